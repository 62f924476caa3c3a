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
from typing import Any, Protocol, runtime_checkable

import torch

logger = logging.getLogger(__name__)

__all__ = ["Evaluator", "FiniteEncoder", "NonFiniteEmbeddingError", "TextEncoder", "run_evaluators"]


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


class NonFiniteEmbeddingError(ValueError):
    """An encoder returned NaN/Inf embeddings; every metric computed from them would be meaningless."""


class FiniteEncoder:
    """Wraps an encoder so that every embedding it returns is checked for NaN/Inf.

    NaN embeddings still rank documents (in an arbitrary order), so a model with NaN weights scored
    nDCG@10 = 0.38 instead of failing. ``encode``, ``embed_texts`` and calls (``forward``, which the
    ICL evaluator uses) are checked; other attributes pass through.

    Args:
        encoder: The wrapped encoder (an ``Embedder`` or a ``TextEncoder``).
        name: The evaluator's name, for the message.
    """

    def __init__(self, encoder: Any, name: str) -> None:
        self._encoder = encoder
        self._name = name

    def _check(self, emb: Any, texts: Any = None) -> Any:
        if isinstance(emb, torch.Tensor) and emb.is_floating_point() and emb.dim() >= 1:
            bad = ~torch.isfinite(emb.reshape(emb.size(0), -1)).all(dim=-1)  # (N,)
            if bad.any():
                first = int(bad.nonzero()[0, 0])
                example = f" (e.g. text {first}: {str(texts[first])[:60]!r})" if texts is not None else ""
                raise NonFiniteEmbeddingError(
                    f"evaluator {self._name!r}: {int(bad.sum())} of {bad.numel()} embeddings are NaN/Inf"
                    f"{example}. The model's weights are probably not finite (a diverged run?): "
                    "metrics on them would be meaningless."
                )
        return emb

    def encode(self, texts: list[str], **kwargs: Any) -> torch.Tensor:
        """``encoder.encode``, checked."""
        return self._check(self._encoder.encode(texts, **kwargs), texts)

    def embed_texts(self, texts: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        """``encoder.embed_texts``, checked."""
        return self._check(self._encoder.embed_texts(texts, *args, **kwargs), texts)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._check(self._encoder(*args, **kwargs))

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._encoder, attr)


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
        NonFiniteEmbeddingError: If the encoder returns a NaN/Inf embedding.
    """
    evaluators = list(evaluators)
    names = [ev.name for ev in evaluators]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Evaluator names must be unique; duplicated: {duplicates}")

    results: dict[str, float] = {}
    for ev in evaluators:
        start = time.perf_counter()
        metrics = ev(FiniteEncoder(encoder, ev.name))
        elapsed = time.perf_counter() - start
        clash = sorted(set(metrics) & set(results))
        if clash:
            raise ValueError(f"Evaluator {ev.name!r} returned metric keys already present: {clash}")
        results.update(metrics)
        summary = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        logger.info("Evaluator %s (%.1fs): %s", ev.name, elapsed, summary)
    return results
