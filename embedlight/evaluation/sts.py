"""Semantic textual similarity (STS) evaluation: Spearman of cosine similarity vs gold scores.

The files (STS-B TSV, JSONL, SemEval year folders, pair TSV/CSV) are read by
:mod:`embedlight.evaluation.sts_data`. The metric is the Spearman rank correlation (in ``[-1, 1]``,
not multiplied by 100) between the cosine similarity of the two embeddings and the gold score.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.sts_data import STSData, load_sts, resolve_format
from embedlight.registry import register

logger = logging.getLogger(__name__)

__all__ = ["STSEvaluator", "average_ranks", "spearman"]


def average_ranks(values: np.ndarray | list[float]) -> np.ndarray:
    """1-based ranks where tied values share the mean of their ranks.

    Args:
        values: ``(N,)`` values.

    Returns:
        ``(N,)`` float64 ranks, e.g. ``[10, 20, 20, 30] -> [1, 2.5, 2.5, 4]``.
    """
    a = np.asarray(values, dtype=np.float64).ravel()  # (N,)
    order = np.argsort(a, kind="mergesort")  # (N,)
    sorted_a = a[order]  # (N,)
    new_run = np.empty(a.shape[0], dtype=bool)  # (N,) True at the first element of each tie group
    new_run[:1] = True
    new_run[1:] = sorted_a[1:] != sorted_a[:-1]
    run_id = np.cumsum(new_run) - 1  # (N,) tie-group index of each sorted position
    starts = np.flatnonzero(new_run)  # (G,) 0-based first position of each group
    ends = np.append(starts[1:], a.shape[0])  # (G,) exclusive end of each group
    group_rank = (starts + ends + 1) / 2.0  # (G,) mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(a.shape[0], dtype=np.float64)  # (N,)
    ranks[order] = group_rank[run_id]
    return ranks


def spearman(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Spearman rank correlation with average ranks for ties (equals ``scipy.stats.spearmanr``).

    Args:
        x: ``(N,)`` values.
        y: ``(N,)`` values.

    Returns:
        The Pearson correlation of the average ranks, or ``nan`` if either input is constant.

    Raises:
        ValueError: On length mismatch, fewer than 2 values, or non-finite values.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()  # (N,)
    ya = np.asarray(y, dtype=np.float64).ravel()  # (N,)
    if xa.shape != ya.shape:
        raise ValueError(f"spearman: length mismatch {xa.shape[0]} vs {ya.shape[0]}")
    if xa.shape[0] < 2:
        raise ValueError("spearman: need at least 2 values")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValueError("spearman: inputs contain NaN or inf")
    rx = average_ranks(xa)  # (N,)
    ry = average_ranks(ya)  # (N,)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return float("nan")
    return float(rx @ ry) / denom


def _default_name(path: str, split: str | None) -> str:
    """Metric prefix from the path's basename without extensions, plus ``-{split}``."""
    base = os.path.basename(os.path.normpath(path))
    for ext in (".gz", ".tsv", ".jsonl", ".json", ".csv", ".txt"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return f"{base}-{split}" if split else base


@register("evaluator", "sts")
class STSEvaluator(Evaluator):
    """Spearman correlation between cosine similarity and gold STS scores.

    Both sentences of a pair are embedded with ``kind="query"`` and the same
    ``instruction`` (STS is symmetric). Each distinct sentence is encoded once.
    Data is loaded lazily on the first call and cached.

    Args:
        path: STS-B TSV(.gz), JSONL file, or SemEval year directory (see module docs).
        split: STS-B split (e.g. ``"test"``; ``None`` = all rows) or SemEval subset.
        name: Metric prefix; defaults to the file/directory name without extensions,
            suffixed with ``-{split}`` when a split is given (e.g. ``"stsbenchmark-test"``).
        format: ``"auto"``, ``"stsb"``, ``"jsonl"`` or ``"semeval"``.
        instruction: Passed to ``encoder.encode`` (``None`` = encoder default, ``""`` = none).
        max_pairs: Evaluate only ``max_pairs`` pairs: the first ones, or a random subset when ``seed`` is set.
        seed: Seed of the random subset drawn when ``max_pairs`` is set (None: the first pairs).
        warning: A caveat about this set, logged as a warning when it is loaded (e.g. a train/test overlap).
        batch_size: Encoding batch size.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: On an unknown format.
    """

    def __init__(
        self,
        path: str,
        split: str | None = None,
        name: str | None = None,
        format: str = "auto",
        instruction: str | None = None,
        max_pairs: int | None = None,
        batch_size: int = 64,
        seed: int | None = None,
        warning: str | None = None,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"STS data not found: {self.path}")
        self.split = split
        self.format = resolve_format(self.path, format)
        self.name = name or _default_name(self.path, split)
        self.instruction = instruction
        if max_pairs is not None and max_pairs < 2:
            raise ValueError(f"max_pairs must be at least 2, got {max_pairs}")
        self.max_pairs = max_pairs
        self.seed = seed
        self.warning = warning
        self.batch_size = batch_size
        self._data: STSData | None = None

    @property
    def data(self) -> STSData:
        """The loaded pairs (read from disk on first access, truncated to ``max_pairs``)."""
        if self._data is None:
            data = load_sts(self.path, self.split, self.format)
            if self.max_pairs is not None and self.seed is not None:
                from embedlight.evaluation.loaders import subsample

                idx = subsample(len(data), self.max_pairs, self.seed)
                data = STSData(
                    [data.text1[i] for i in idx], [data.text2[i] for i in idx], [data.scores[i] for i in idx]
                )
            elif self.max_pairs is not None:
                n = self.max_pairs
                data = STSData(data.text1[:n], data.text2[:n], data.scores[:n])
            self._data = data
            logger.info("Loaded %s: %d pairs", self.name, len(data))
            if self.warning:
                logger.warning("%s: %s", self.name, self.warning)
        return self._data

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """Embed the pairs and correlate cosine similarity with the gold scores.

        Args:
            encoder: The model to evaluate.

        Returns:
            ``{"{name}/spearman": rho}`` with ``rho`` in ``[-1, 1]`` (``nan`` if constant).
        """
        data = self.data
        unique = list(dict.fromkeys(data.text1 + data.text2))
        index = {text: i for i, text in enumerate(unique)}
        emb = encoder.encode(
            unique, kind="query", instruction=self.instruction, batch_size=self.batch_size
        )  # (U, D)
        emb = F.normalize(emb.detach().float().cpu(), dim=-1)  # (U, D)
        i1 = torch.tensor([index[t] for t in data.text1], dtype=torch.long)  # (P,)
        i2 = torch.tensor([index[t] for t in data.text2], dtype=torch.long)  # (P,)
        cos = (emb[i1] * emb[i2]).sum(dim=-1)  # (P,)
        rho = spearman(cos.double().numpy(), np.asarray(data.scores, dtype=np.float64))
        if math.isnan(rho):
            logger.warning("%s: Spearman is undefined (constant similarities or gold scores)", self.name)
        return {f"{self.name}/spearman": rho}
