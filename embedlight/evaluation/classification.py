"""Classification with a linear probe on frozen embeddings (MTEB ``Classification``, SentEval transfer).

A scikit-learn logistic regression (``max_iter=100``, as MTEB) is fitted on the embeddings of the train
split and scored on the test split; when a set has no split (SentEval MR, CR, SUBJ, MPQA), stratified
k-fold cross-validation is used instead (SentEval uses 10 folds; Conneau & Kiela, 2018). Reported:
accuracy and macro-F1 (MTEB's ``f1``).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.common import embed_normalized
from embedlight.evaluation.loaders import KFOLD_TASKS, LabeledTexts, load_senteval, subsample
from embedlight.registry import register

log = logging.getLogger(__name__)

__all__ = ["ClassificationEvaluator", "linear_probe"]


def linear_probe(
    train_x: np.ndarray,
    train_y: list[str],
    test_x: np.ndarray,
    test_y: list[str],
    max_iter: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """Fit a logistic regression on ``train`` and return ``(accuracy, macro_f1)`` on ``test``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    clf = LogisticRegression(max_iter=max_iter, random_state=seed)
    clf.fit(train_x, train_y)
    pred = clf.predict(test_x)
    return float(accuracy_score(test_y, pred)), float(f1_score(test_y, pred, average="macro"))


@register("evaluator", "classification")
class ClassificationEvaluator(Evaluator):
    """Linear-probe accuracy and macro-F1 on a SentEval classification task.

    Args:
        path: The ``senteval_classification`` folder.
        task: ``MR``, ``CR``, ``SUBJ``, ``MPQA`` (k-fold), ``SST2``, ``SST5``, ``TREC`` (train/test splits).
        name: Metric prefix (default: the task name).
        train_split: Train split for tasks that have one.
        test_split: Test split for tasks that have one.
        n_folds: Folds of the cross-validation for tasks without a split.
        max_train: Seeded random subset of the train split (or of the whole set with k-fold).
        max_test: Seeded random subset of the test split.
        seed: Seed of the subsets, the folds and the solver.
        max_iter: Logistic-regression iterations.
        instruction: Instruction for the texts (None: encoder's query default, "" none).
        batch_size: Encoding batch size.
    """

    def __init__(
        self,
        path: str,
        task: str,
        name: str | None = None,
        train_split: str = "train",
        test_split: str = "test",
        n_folds: int = 10,
        max_train: int | None = None,
        max_test: int | None = None,
        seed: int = 0,
        max_iter: int = 100,
        instruction: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"SentEval folder not found: {self.path}")
        self.task = task
        self.name = name or task
        self.train_split, self.test_split = train_split, test_split
        if n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {n_folds}")
        self.n_folds = n_folds
        self.max_train, self.max_test, self.seed, self.max_iter = max_train, max_test, seed, max_iter
        self.instruction = instruction
        self.batch_size = batch_size
        self._data: tuple[LabeledTexts, LabeledTexts | None] | None = None

    @property
    def data(self) -> tuple[LabeledTexts, LabeledTexts | None]:
        """``(train, test)``; ``test`` is None for k-fold tasks."""
        if self._data is None:
            if self.task in KFOLD_TASKS:
                full = load_senteval(self.path, self.task)
                train, test = full.select(subsample(len(full), self.max_train, self.seed)), None
            else:
                train = load_senteval(self.path, self.task, self.train_split)
                test = load_senteval(self.path, self.task, self.test_split)
                train = train.select(subsample(len(train), self.max_train, self.seed))
                test = test.select(subsample(len(test), self.max_test, self.seed))
            self._data = (train, test)
            log.info(
                "Loaded %s: %d train, %s test", self.name, len(train), "k-fold" if test is None else len(test)
            )
        return self._data

    def _embed(self, encoder: TextEncoder, texts: list[str]) -> np.ndarray:
        return embed_normalized(encoder, texts, instruction=self.instruction, batch_size=self.batch_size)

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """``{name}/accuracy`` and ``{name}/f1`` (macro)."""
        train, test = self.data
        x = self._embed(encoder, train.texts)  # (N, D)
        if test is not None:
            acc, f1 = linear_probe(
                x, train.labels, self._embed(encoder, test.texts), test.labels, self.max_iter, self.seed
            )
        else:
            from sklearn.model_selection import StratifiedKFold

            y = np.asarray(train.labels)
            folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.seed).split(x, y)
            scores = [
                linear_probe(x[a], y[a].tolist(), x[b], y[b].tolist(), self.max_iter, self.seed)
                for a, b in folds
            ]
            acc, f1 = (float(v) for v in np.mean(scores, axis=0))
        return {f"{self.name}/accuracy": acc, f"{self.name}/f1": f1}
