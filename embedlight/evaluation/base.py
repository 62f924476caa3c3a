"""Common interfaces for embedding evaluators.

An *evaluator* owns a benchmark (files on disk, loaded lazily) and turns a
:class:`TextEncoder` into a flat ``dict[str, float]`` of metrics whose keys are
prefixed with the evaluator's name, e.g. ``"scifact/ndcg@10"``. Flat, prefixed keys
can be handed directly to ``LightningModule.log_dict`` or printed as a table.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import torch

logger = logging.getLogger(__name__)

__all__ = ["Evaluator", "TextEncoder", "run_evaluators"]


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that can embed a list of texts.

    Implementations apply their own instruction/prefix handling (BGE query
    instruction, E5 ``"query: "``/``"passage: "`` prefixes, INSTRUCTOR pairs, ...)
    based on ``kind`` and ``instruction``.
    """

    def encode(
        self,
        texts: list[str],
        *,
        kind: str = "query",
        instruction: str | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> torch.Tensor:
        """Embed ``texts``.

        Args:
            texts: Texts to embed.
            kind: ``"query"`` or ``"document"``; selects the encoder's default
                instruction/prefix and, for asymmetric models, the tower.
            instruction: Instruction to use instead of the default for ``kind``.
                ``None`` means "use the encoder's default for that kind"; the empty
                string ``""`` means "no instruction at all".
            batch_size: Number of texts per forward pass.
            show_progress: Whether to display a progress bar.

        Returns:
            A float tensor of shape ``(len(texts), D)``; row ``i`` embeds ``texts[i]``.
            It need not be normalised.
        """
        ...


class Evaluator(ABC):
    """Base class for evaluators.

    Attributes:
        name: Prefix of every metric key returned by :meth:`__call__`.
    """

    name: str

    @abstractmethod
    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """Evaluate ``encoder``.

        Args:
            encoder: The model to evaluate.

        Returns:
            Metrics keyed ``"<name>/<metric>"``, e.g. ``"<name>/ndcg@10"``.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', '?')!r})"


def run_evaluators(evaluators: Iterable[Evaluator], encoder: TextEncoder) -> dict[str, float]:
    """Run several evaluators and merge their metrics.

    Args:
        evaluators: Evaluators to run, in order. Their names must be unique so that
            no metric silently overwrites another (checked before anything runs).
        encoder: The model to evaluate.

    Returns:
        The union of all evaluators' metric dicts.

    Raises:
        ValueError: If two evaluators share a name, or two evaluators return the same key.
    """
    evaluators = list(evaluators)
    names = [ev.name for ev in evaluators]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Evaluator names must be unique; duplicated: {duplicates}")

    results: dict[str, float] = {}
    for ev in evaluators:
        start = time.perf_counter()
        metrics = ev(encoder)
        elapsed = time.perf_counter() - start
        clash = sorted(set(metrics) & set(results))
        if clash:
            raise ValueError(f"Evaluator {ev.name!r} returned metric keys already present: {clash}")
        results.update(metrics)
        summary = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        logger.info("Evaluator %s (%.1fs): %s", ev.name, elapsed, summary)
    return results
