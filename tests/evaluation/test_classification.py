"""Classification (logistic regression on embeddings) on toy embeddings from a fake encoder."""

from __future__ import annotations

import os

import pytest

from embedlight.evaluation import ClassificationEvaluator
from tests.evaluation.fakes import TableEncoder


def _senteval(root, train_rows, test_rows):
    os.makedirs(root / "TREC", exist_ok=True)
    (root / "TREC" / "train_5500.label").write_text("".join(f"{lab}:x {t}\n" for t, lab in train_rows))
    (root / "TREC" / "TREC_10.label").write_text("".join(f"{lab}:x {t}\n" for t, lab in test_rows))
    return str(root)


def test_separable_toy_embeddings_and_a_flipped_label(tmp_path):
    train = [(f"a{i}", "NUM") for i in range(6)] + [(f"b{i}", "LOC") for i in range(6)]
    test = [("ta0", "NUM"), ("ta1", "NUM"), ("tb0", "LOC"), ("tb1", "NUM")]  # tb1 sits with LOC: 1 error
    table = {t: [1.0, 0.05 * i] for i, (t, _) in enumerate(train[:6])}
    table |= {t: [-1.0, 0.05 * i] for i, (t, _) in enumerate(train[6:])}
    table |= {"ta0": [0.9, 0.1], "ta1": [1.0, 0.2], "tb0": [-0.9, 0.1], "tb1": [-1.0, 0.0]}
    out = ClassificationEvaluator(_senteval(tmp_path, train, test), "TREC", name="c")(TableEncoder(table))
    assert out["c/accuracy"] == pytest.approx(3 / 4)
    # predictions NUM NUM LOC LOC vs gold NUM NUM LOC NUM: F1(NUM) = 2*2/(2*2+0+1) = 0.8, F1(LOC) = 2/3
    assert out["c/f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_kfold_when_no_split(tmp_path):
    os.makedirs(tmp_path / "MR")
    pos = [f"good {i}" for i in range(10)]
    neg = [f"bad {i}" for i in range(10)]
    (tmp_path / "MR" / "rt-polarity.pos").write_text("\n".join(pos) + "\n")
    (tmp_path / "MR" / "rt-polarity.neg").write_text("\n".join(neg) + "\n")
    table = {t: [1.0, 0.01 * i] for i, t in enumerate(pos)} | {t: [-1.0, 0.01 * i] for i, t in enumerate(neg)}
    out = ClassificationEvaluator(str(tmp_path), "MR", n_folds=5)(TableEncoder(table))
    assert out == {"MR/accuracy": 1.0, "MR/f1": 1.0}
