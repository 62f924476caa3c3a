"""Refuse checkpoints with missing tensors instead of evaluating or training random-init layers.

``transformers`` fills tensors absent from a checkpoint with fresh random weights and only prints a
MISSING table; a truncated export then evaluates (or fine-tunes) a partly random model. Both loading
paths raise instead: the backbones through ``from_pretrained(..., output_loading_info=True)``, and
``embedlight-eval`` (sentence-transformers calls ``from_pretrained`` itself) through
:func:`capture_loading_reports`.

Allowed to be missing: BERT-style ``pooler.*`` tensors. The pooler head (dense + tanh over [CLS],
trained for next-sentence prediction) is never used by embedlight, which pools the hidden states
itself, and checkpoints saved from masked-LM models (``BertForMaskedLM``) legitimately lack it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

ALLOWED_MISSING = ("pooler.",)  # see the module docstring


class IncompleteCheckpointError(RuntimeError):
    """A checkpoint lacks tensors the architecture needs (they would be randomly initialised)."""


def check_loading_info(
    source: str,
    missing: Iterable[str],
    mismatched: Iterable[Any] = (),
    allowed: tuple[str, ...] = ALLOWED_MISSING,
) -> None:
    """Raise :class:`IncompleteCheckpointError` naming ``source`` and the keys, unless all are allowed.

    Args:
        source: The checkpoint folder or name.
        missing: Keys the model expects and the checkpoint lacks.
        mismatched: Keys (or ``(key, ...)`` tuples) whose shapes differ.
        allowed: Key prefixes that may be missing (checked after any ``base_model_prefix.``).
    """
    missing = sorted(
        k for k in missing if not any(k.split(".", 1)[-1].startswith(a) or k.startswith(a) for a in allowed)
    )
    mismatched = sorted(m[0] if isinstance(m, tuple) else m for m in mismatched)
    if not missing and not mismatched:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if mismatched:
        parts.append(f"{len(mismatched)} with the wrong shape: {mismatched[:8]}")
    raise IncompleteCheckpointError(
        f"{source}: incomplete checkpoint, {'; '.join(parts)}. transformers would fill them with random "
        "weights; re-export the model (or resume=auto the run that wrote it) instead."
    )


@contextlib.contextmanager
def capture_loading_reports() -> Iterator[list[tuple[str, Any]]]:
    """Collect ``(source, LoadStateDictInfo)`` of every ``from_pretrained`` inside the block.

    For loaders that call ``from_pretrained`` themselves (sentence-transformers): wraps transformers'
    loading-report function, which receives every load's missing/mismatched keys.
    """
    from transformers import modeling_utils

    reports: list[tuple[str, Any]] = []
    original = modeling_utils.log_state_dict_report

    def capture(*args: Any, **kwargs: Any) -> Any:
        reports.append((str(kwargs.get("pretrained_model_name_or_path")), kwargs.get("loading_info")))
        return original(*args, **kwargs)

    modeling_utils.log_state_dict_report = capture
    try:
        yield reports
    finally:
        modeling_utils.log_state_dict_report = original
