"""Pair classification (MTEB's ``PairClassification``: duplicate questions, paraphrase, entailment).

The score of a pair is the cosine similarity of its two embeddings. The headline metric is the average
precision of that score against the binary label (MTEB's ``cosine_ap``, the main score of e.g. MRPC-style
and SprintDuplicateQuestions tasks), threshold-free. As in MTEB we also report the best accuracy and the
best F1 over all thresholds, with the thresholds that reach them (these are fitted on the test data, so
they are optimistic; AP is the number to compare).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.common import check_limit, embed_normalized
from embedlight.evaluation.loaders import PairData, load_pairs, load_snli, subsample
from embedlight.registry import register

log = logging.getLogger(__name__)

__all__ = ["PairClassificationEvaluator", "average_precision", "best_accuracy", "best_f1"]


def _cuts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores in decreasing order with the cumulative true/false positives when predicting
    ``score >= that value`` positive (ties go together)."""
    order = np.argsort(-scores, kind="mergesort")  # (N,)
    s = scores[order]  # (N,)
    y = labels[order]  # (N,)
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.shape[0] - 1]  # (T,) last index of each tie group
    tp = np.cumsum(y)[last]  # (T,)
    fp = (last + 1) - tp  # (T,)
    return s[last], tp, fp


def _binary(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape or s.size == 0:
        raise ValueError(f"scores and labels must be non-empty and aligned, got {s.shape} and {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"labels must be 0/1, got {sorted(set(y.tolist()))[:5]}")
    return s, y


def average_precision(scores, labels) -> float:
    """Average precision, ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds (= sklearn's
    ``average_precision_score``)."""
    s, y = _binary(scores, labels)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    _, tp, fp = _cuts(s, y)
    precision = tp / (tp + fp)
    recall_gain = np.diff(np.r_[0.0, tp]) / n_pos
    return float((recall_gain * precision).sum())


def best_accuracy(scores, labels) -> tuple[float, float]:
    """Best accuracy of ``score >= t`` over all thresholds (predicting everything negative included).

    Returns:
        ``(accuracy, threshold)``; the threshold is the midpoint between the cut score and the next one.
    """
    s, y = _binary(scores, labels)
    values, tp, fp = _cuts(s, y)
    n_neg = y.size - y.sum()
    correct = np.r_[n_neg, tp + (n_neg - fp)]  # (T+1,) index 0 = all negative
    i = int(np.argmax(correct))
    if i == 0:
        threshold = values[0] + 1.0  # above every score
    else:  # positives are the scores >= values[i - 1]
        below = values[i] if i < values.size else values[-1] - 1.0
        threshold = (values[i - 1] + below) / 2
    return float(correct[i] / y.size), float(threshold)


def best_f1(scores, labels) -> tuple[float, float]:
    """Best F1 of ``score >= t`` over all thresholds; returns ``(f1, threshold)``."""
    s, y = _binary(scores, labels)
    values, tp, fp = _cuts(s, y)
    n_pos = y.sum()
    f1 = 2 * tp / (tp + fp + n_pos)  # (T,) 2TP / (2TP + FP + FN)
    i = int(np.argmax(f1))
    nxt = values[i + 1] if i + 1 < values.size else values[i] - 1.0
    return float(f1[i]), float((values[i] + nxt) / 2)


@register("evaluator", "pair_classification")
class PairClassificationEvaluator(Evaluator):
    """Cosine average precision (plus best accuracy/F1) on labelled pairs.

    Args:
        path: A pair file (TSV/CSV, MRPC) or, with ``format="snli"``, SentEval's SNLI folder.
        name: Metric prefix (default: the file name).
        format: ``auto``/``tsv``/``csv`` (see :func:`~embedlight.evaluation.loaders.load_pairs`) or ``snli``.
        split: SNLI split (``dev``/``test``); ignored otherwise.
        instruction: Instruction for both sentences (None: the encoder's query default, "" none).
        limit: Evaluate a seeded random subset of ``limit`` pairs (None: all).
        seed: Seed of that subset.
        batch_size: Encoding batch size.
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        format: str = "auto",
        split: str = "test",
        instruction: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        batch_size: int = 64,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"pair classification data not found: {self.path}")
        self.name = name or os.path.splitext(os.path.basename(self.path.rstrip(os.sep)))[0]
        self.format = format
        self.split = split
        self.instruction = instruction
        self.limit = check_limit(limit)
        self.seed = seed
        self.batch_size = batch_size
        self._data: PairData | None = None

    @property
    def data(self) -> PairData:
        """The pairs (loaded on first access)."""
        if self._data is None:
            data = (
                load_snli(self.path, self.split)
                if self.format == "snli"
                else load_pairs(self.path, self.format)
            )
            self._data = data.select(subsample(len(data), self.limit, self.seed))
            log.info("Loaded %s: %d pairs", self.name, len(self._data))
        return self._data

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """``{name}/ap``, ``{name}/accuracy``, ``{name}/f1`` and their thresholds."""
        data = self.data
        emb = embed_normalized(
            encoder, data.text1 + data.text2, instruction=self.instruction, batch_size=self.batch_size
        )
        n = len(data)
        cos = (emb[:n] * emb[n:]).sum(axis=1)  # (P,)
        labels = np.asarray(data.labels)
        acc, acc_t = best_accuracy(cos, labels)
        f1, f1_t = best_f1(cos, labels)
        return {
            f"{self.name}/ap": average_precision(cos, labels),
            f"{self.name}/accuracy": acc,
            f"{self.name}/accuracy_threshold": acc_t,
            f"{self.name}/f1": f1,
            f"{self.name}/f1_threshold": f1_t,
        }
