"""Clustering: V-measure of k-means on a hand case with a computed answer."""

from __future__ import annotations

import math
import os

import pytest

from embedlight.evaluation import ClusteringEvaluator
from embedlight.evaluation.clustering import kmeans_v_measure
from tests.evaluation.fakes import TableEncoder


def _hand_v_measure() -> float:
    # gold [a, a, b, b], clusters [0, 0, 0, 1]
    h_c = 1.0  # H(class) in bits
    h_k = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    h_c_given_k = 0.75 * -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    h_k_given_c = 0.5 * 1.0  # class b is split 1/1
    hom, com = 1 - h_c_given_k / h_c, 1 - h_k_given_c / h_k
    return 2 * hom * com / (hom + com)


def test_v_measure_hand_case():
    import numpy as np

    x = np.array([[1.0, 0.0], [1.0, 0.01], [0.99, 0.0], [0.0, 1.0]])  # k-means (k=2): {0,1,2} and {3}
    assert _hand_v_measure() == pytest.approx(0.3437, abs=1e-4)
    assert kmeans_v_measure(x, ["a", "a", "b", "b"]) == pytest.approx(_hand_v_measure())


def test_evaluator_perfect_clusters(tmp_path):
    os.makedirs(tmp_path / "TREC")
    rows = [("q0", "NUM"), ("q1", "NUM"), ("q2", "LOC"), ("q3", "LOC"), ("q4", "HUM"), ("q5", "HUM")]
    (tmp_path / "TREC" / "TREC_10.label").write_text("".join(f"{lab}:x {t}\n" for t, lab in rows))
    table = {
        "q0": [1, 0, 0],
        "q1": [1, 0.1, 0],
        "q2": [0, 1, 0],
        "q3": [0.1, 1, 0],
        "q4": [0, 0, 1],
        "q5": [0, 0.1, 1],
    }
    out = ClusteringEvaluator(str(tmp_path), "TREC", "test", n_runs=2)(TableEncoder(table))
    assert out == {"TREC-clustering/v_measure": pytest.approx(1.0)}
