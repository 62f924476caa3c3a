"""Weight loading beside ``from_pretrained``: the missing-tensor check, and MLM heads read from checkpoints.

Refuse checkpoints with missing tensors instead of evaluating or training random-init layers.

``transformers`` fills tensors absent from a checkpoint with fresh random weights and only prints a
MISSING table; a truncated export then evaluates (or fine-tunes) a partly random model. Both loading
paths raise instead: the backbones through ``from_pretrained(..., output_loading_info=True)``, and
``embedlight-eval`` (sentence-transformers calls ``from_pretrained`` itself) through
:func:`capture_loading_reports`.

Allowed to be missing: BERT-style ``pooler.*`` tensors. The pooler head (dense + tanh over [CLS],
trained for next-sentence prediction) is never used by embedlight, which pools the hidden states
itself, and checkpoints saved from masked-LM models (``BertForMaskedLM``) legitimately lack it.

:func:`mlm_head_state` reads a masked-LM head (BERT and RoBERTa layouts, or the file a RetroMAE export
writes) from a checkpoint folder, for recipes that continue masked-LM pretraining.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from safetensors import safe_open

ALLOWED_MISSING = ("pooler.",)  # see the module docstring

MLM_HEAD_FILE = "retromae_mlm_head.safetensors"  # written by RetroMAE's export, read back by mlm_head_state

# checkpoint key prefixes of known MLM heads -> our names (dense, norm, bias)
_HEAD_LAYOUTS = {
    "cls.predictions.": {
        "transform.dense.weight": "dense.weight",
        "transform.dense.bias": "dense.bias",
        "transform.LayerNorm.weight": "norm.weight",
        "transform.LayerNorm.bias": "norm.bias",
        "bias": "bias",
    },
    "lm_head.": {
        "dense.weight": "dense.weight",
        "dense.bias": "dense.bias",
        "layer_norm.weight": "norm.weight",
        "layer_norm.bias": "norm.bias",
        "bias": "bias",
    },
}


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


def mlm_head_state(folder: str) -> dict[str, torch.Tensor]:
    """MLM-head tensors found in a checkpoint folder, named ``dense.*``, ``norm.*`` and ``bias`` (may be empty).

    Reads :data:`MLM_HEAD_FILE` when the folder has one (a RetroMAE export), else the head tensors of
    the BERT (``cls.predictions.*``) or RoBERTa (``lm_head.*``) layout in its ``*.safetensors``.
    """
    own = os.path.join(folder, MLM_HEAD_FILE)
    if os.path.isfile(own):
        with safe_open(own, framework="pt") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}
    state: dict[str, torch.Tensor] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, framework="pt") as fh:
            for key in fh.keys():
                for prefix, names in _HEAD_LAYOUTS.items():
                    if key.startswith(prefix) and key[len(prefix) :] in names:
                        state[names[key[len(prefix) :]]] = fh.get_tensor(key)
    return state
