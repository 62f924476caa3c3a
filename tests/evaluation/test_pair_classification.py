"""Pair classification: AP against scikit-learn, best accuracy/F1 by hand, the evaluator on a fake encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from embedlight.evaluation import PairClassificationEvaluator
from embedlight.evaluation.pair_classification import average_precision, best_accuracy, best_f1
from tests.evaluation.fakes import TableEncoder


def test_average_precision_hand_ranking():
    # ranking by score: + - + - +  -> AP = (1/1 + 2/3 + 3/5) / 3
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [1, 0, 1, 0, 1]
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=40) / 5.0  # many ties
    labels = rng.integers(0, 2, size=40)
    assert average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores))


def test_best_accuracy_and_f1_hand_case():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    labels = [1, 1, 0, 1, 0, 0]
    # cut after 0.6 (predict top 4 positive): TP=3 FP=1 TN=2 FN=0 -> acc 5/6; cut after 0.8: TP2 TN3 FN1 -> 5/6
    acc, t = best_accuracy(scores, labels)
    assert acc == pytest.approx(5 / 6)
    pred = np.asarray(scores) >= t
    assert np.mean(pred == np.asarray(labels, bool)) == pytest.approx(5 / 6)
    # F1: top 4 -> 2*3/(2*3+1+0) = 6/7; top 2 -> 4/(4+0+1) = 0.8
    f1, t1 = best_f1(scores, labels)
    assert f1 == pytest.approx(6 / 7)
    assert 0.5 < t1 < 0.6


def test_best_accuracy_may_predict_all_negative():
    acc, t = best_accuracy([0.9, 0.8, 0.7], [0, 0, 1])
    assert acc == pytest.approx(2 / 3)
    assert t > 0.9 or 0.7 < t < 0.8  # all negative, or only the last one... both reach 2/3
    assert not math.isnan(t)


def test_evaluator_scores_cosine(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("a\tb\t1\nc\td\t0\ne\tf\t1\n", encoding="utf-8")
    # cos(a,b)=1, cos(c,d)=0, cos(e,f)=0.6 -> both positives rank above the negative -> AP 1
    enc = TableEncoder({"a": [1, 0], "b": [2, 0], "c": [1, 0], "d": [0, 3], "e": [1, 0], "f": [0.6, 0.8]})
    out = PairClassificationEvaluator(str(path), name="p", instruction="Q: ")(enc)
    assert out["p/ap"] == pytest.approx(1.0)
    assert out["p/accuracy"] == pytest.approx(1.0) and out["p/f1"] == pytest.approx(1.0)
    assert 0.0 < out["p/accuracy_threshold"] < 0.6
    assert enc.calls == [("query", "Q: ")]
