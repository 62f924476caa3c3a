"""Clustering (MTEB ``Clustering``): mini-batch k-means on the embeddings, scored by V-measure.

As MTEB: ``sklearn.cluster.MiniBatchKMeans`` with ``n_clusters`` = the number of gold labels and a batch
size of 500, scored with ``v_measure_score`` (Rosenberg & Hirschberg, 2007). The score is averaged over
``n_runs`` k-means seeds (k-means depends on its initialisation).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.common import embed_normalized
from embedlight.evaluation.loaders import LabeledTexts, load_senteval, subsample
from embedlight.registry import register

log = logging.getLogger(__name__)

__all__ = ["ClusteringEvaluator", "kmeans_v_measure"]


def kmeans_v_measure(x: np.ndarray, labels: list[str], seed: int = 0, batch_size: int = 500) -> float:
    """V-measure of mini-batch k-means (k = number of distinct labels) on ``x`` ``(N, D)``."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import v_measure_score

    k = len(set(labels))
    if k < 2:
        raise ValueError("clustering needs at least 2 distinct labels")
    pred = MiniBatchKMeans(n_clusters=k, batch_size=batch_size, n_init="auto", random_state=seed).fit_predict(
        x
    )
    return float(v_measure_score(labels, pred))


@register("evaluator", "clustering")
class ClusteringEvaluator(Evaluator):
    """V-measure of k-means on a labelled SentEval set (e.g. TREC coarse question types, SST5).

    Args:
        path: The ``senteval_classification`` folder.
        task: A SentEval task (``TREC``: 6 coarse labels, ``SST5``: 5 labels, ``MR``, ...).
        split: Split for tasks that have one (None for MR/CR/SUBJ/MPQA).
        name: Metric prefix (default: ``<task>-clustering``).
        limit: Seeded random subset of the texts.
        n_runs: k-means seeds averaged.
        seed: Seed of the subset and of the first k-means run.
        instruction: Instruction for the texts.
        batch_size: Encoding batch size.
    """

    def __init__(
        self,
        path: str,
        task: str,
        split: str | None = "test",
        name: str | None = None,
        limit: int | None = None,
        n_runs: int = 3,
        seed: int = 0,
        instruction: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"SentEval folder not found: {self.path}")
        self.task, self.split = task, split
        self.name = name or f"{task}-clustering"
        self.limit, self.n_runs, self.seed = limit, n_runs, seed
        self.instruction = instruction
        self.batch_size = batch_size
        self._data: LabeledTexts | None = None

    @property
    def data(self) -> LabeledTexts:
        """The texts and labels (loaded on first access)."""
        if self._data is None:
            full = load_senteval(self.path, self.task, self.split)
            self._data = full.select(subsample(len(full), self.limit, self.seed))
            log.info(
                "Loaded %s: %d texts, %d labels", self.name, len(self._data), len(set(self._data.labels))
            )
        return self._data

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """``{name}/v_measure`` (mean over runs)."""
        data = self.data
        x = embed_normalized(encoder, data.texts, instruction=self.instruction, batch_size=self.batch_size)
        scores = [kmeans_v_measure(x, data.labels, seed=self.seed + r) for r in range(self.n_runs)]
        return {f"{self.name}/v_measure": float(np.mean(scores))}
