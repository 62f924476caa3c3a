"""Tests for embedlight.evaluation.sts: loaders, Spearman with ties, evaluator plumbing."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from embedlight.evaluation import STSEvaluator
from embedlight.evaluation.sts import average_ranks, spearman
from embedlight.evaluation.sts_data import load_sts

SHARED = os.environ.get(
    "EMBEDLIGHT_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
)
STSB = os.path.join(SHARED, "stsb_en", "stsbenchmark.tsv.gz")
SEMEVAL = os.path.join(SHARED, "sts12_16_en")


class LookupEncoder:
    """Fake encoder returning hand-made vectors looked up by text; records every call."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[tuple[str, str | None, list[str]]] = []

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        self.calls.append((kind, instruction, list(texts)))
        return torch.tensor([self.table[t] for t in texts], dtype=torch.float32)  # (N, D)


def angle(deg: float) -> list[float]:
    rad = math.radians(deg)
    return [math.cos(rad), math.sin(rad)]


def write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return str(path)


# --------------------------------------------------------------------------- Spearman


def test_average_ranks_ties():
    assert average_ranks([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert average_ranks([3, 1, 3, 3, 2]).tolist() == [4.0, 1.0, 4.0, 4.0, 2.0]


def test_spearman_with_ties_hand_computed():
    # ranks x = [1, 2.5, 2.5, 4], ranks y = [1, 3, 2, 4]; centred dot = 4.5,
    # |rx|^2 = 4.5, |ry|^2 = 5  ->  rho = 4.5 / sqrt(22.5) = sqrt(0.9).
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        spearman([1, float("nan")], [1, 2])


def test_spearman_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=200).astype(float)  # many ties
    y = x + rng.normal(0, 2, size=200).round(0)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


# --------------------------------------------------------------------------- JSONL + evaluator


def test_jsonl_evaluator_perfect_and_inverted(tmp_path):
    # Cosines: (a,b)=cos 10deg > (a,c)=cos 40deg > (a,d)=cos 80deg.
    table = {"a": angle(0), "b": angle(10), "c": angle(40), "d": angle(80)}
    rows = [
        {"text1": "a", "text2": "b", "score": 5.0},
        {"sentence1": "a", "sentence2": "c", "label": 3},
        {"text1": "a", "text2": "d", "score": "0.5"},
    ]
    enc = LookupEncoder(table)
    ev = STSEvaluator(write_jsonl(tmp_path / "toy.jsonl", rows), instruction="Retrieve similar text: ")
    assert ev.name == "toy"
    assert ev(enc) == {"toy/spearman": pytest.approx(1.0)}
    # Each distinct sentence encoded once, as a query, with the given instruction.
    assert len(enc.calls) == 1
    kind, instruction, texts = enc.calls[0]
    assert (kind, instruction, sorted(texts)) == ("query", "Retrieve similar text: ", ["a", "b", "c", "d"])

    inverted = [dict(r) for r in rows]
    for r, s in zip(inverted, [0, 1, 2]):
        r.pop("label", None)
        r["score"] = s
    ev = STSEvaluator(write_jsonl(tmp_path / "inv.jsonl", inverted), name="inv", format="jsonl")
    assert ev(enc)["inv/spearman"] == pytest.approx(-1.0)


def test_evaluator_spearman_with_ties(tmp_path):
    # Cosines strictly decreasing: (a,b) > (a,c) > (a,d) > (a,e); gold has a tie.
    table = {"a": angle(0), "b": angle(10), "c": angle(30), "d": angle(50), "e": angle(70)}
    gold = [3.0, 3.0, 2.0, 1.0]
    rows = [{"text1": "a", "text2": t, "score": s} for t, s in zip("bcde", gold)]
    enc = LookupEncoder(table)
    metrics = STSEvaluator(write_jsonl(tmp_path / "t.jsonl", rows), max_pairs=4)(enc)
    # cos ranks [4, 3, 2, 1]; gold ranks [3.5, 3.5, 2, 1]; centred: [1.5, .5, -.5, -1.5] . [1, 1, -.5, -1.5]
    # = 1.5 + 0.5 + 0.25 + 2.25 = 4.5; norms^2 = 5 and 4.5 -> rho = 4.5 / sqrt(22.5) = sqrt(0.9)
    assert metrics["t/spearman"] == pytest.approx(math.sqrt(0.9))


def test_max_pairs(tmp_path):
    rows = [{"text1": f"s{i}", "text2": f"t{i}", "score": i} for i in range(10)]
    ev = STSEvaluator(write_jsonl(tmp_path / "m.jsonl", rows), max_pairs=3)
    assert len(ev.data) == 3


def test_jsonl_errors(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl", [{"text1": "a", "text2": "b", "score": 1}, {"text1": "a", "score": 2}]
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: missing field 'text2'"):
        load_sts(path)
    path = write_jsonl(tmp_path / "bad2.jsonl", [{"text1": "a", "text2": "b", "score": "high"}])
    with pytest.raises(ValueError, match=r"bad2\.jsonl:1: field 'score' must be a number"):
        load_sts(path)
    with pytest.raises(FileNotFoundError):
        STSEvaluator(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="Unknown STS format"):
        STSEvaluator(path, format="csv")


# --------------------------------------------------------------------------- STS-B TSV


def test_stsb_tsv_quote_none(tmp_path):
    path = tmp_path / "mini.tsv"
    path.write_text(
        "split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\tsentence2\n"
        'test\tmain-news\tMSRpar\t2012\t1\t4.0\t"Quoted start\tno end quote\n'
        "test\tmain-news\tMSRpar\t2012\t2\t1.5\tplain\ttext\n"
        "train\tmain-news\tMSRpar\t2012\t3\t2.0\tx\ty\n",
        encoding="utf-8",
    )
    data = load_sts(str(path), split="test")
    assert data.text1 == ['"Quoted start', "plain"]
    assert data.scores == [4.0, 1.5]
    assert len(load_sts(str(path))) == 3
    with pytest.raises(ValueError, match="available splits"):
        load_sts(str(path), split="validation")


@pytest.mark.skipif(not os.path.isfile(STSB), reason="shared STS-B file not available")
def test_stsb_real_counts():
    assert len(load_sts(STSB, split="test")) == 1379
    assert len(load_sts(STSB, split="dev")) == 1500
    assert len(load_sts(STSB, split="train")) == 5749
    data = load_sts(STSB, split="test")
    assert min(data.scores) >= 0.0 and max(data.scores) <= 5.0
    ev = STSEvaluator(STSB, split="test")
    assert ev.format == "stsb"
    assert ev.name == "stsbenchmark-test"


# --------------------------------------------------------------------------- SemEval layout


def test_semeval_layout_skips_empty_gold(tmp_path):
    d = tmp_path / "STS99"
    d.mkdir()
    (d / "STS.input.news.txt").write_text("a\tb\nc\td\ne\tf\n", encoding="utf-8")
    (d / "STS.gs.news.txt").write_text("4.5\n\n1\n", encoding="utf-8")
    (d / "STS2016.input.qq.txt").write_text("g\th\tsrc1\tsrc2\n", encoding="utf-8")
    (d / "STS2016.gs.qq.txt").write_text("3\n", encoding="utf-8")
    data = load_sts(str(d))
    assert list(zip(data.text1, data.text2, data.scores)) == [
        ("a", "b", 4.5),
        ("e", "f", 1.0),
        ("g", "h", 3.0),
    ]
    assert len(load_sts(str(d), split="news")) == 2
    assert STSEvaluator(str(d)).name == "STS99"

    (d / "STS.gs.news.txt").write_text("4.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must align"):
        load_sts(str(d))
    (d / "STS.gs.news.txt").unlink()
    with pytest.raises(FileNotFoundError, match="Gold-score file"):
        load_sts(str(d))


@pytest.mark.skipif(not os.path.isdir(SEMEVAL), reason="shared SemEval STS data not available")
def test_semeval_real_counts():
    assert len(load_sts(os.path.join(SEMEVAL, "STS12"))) == 3108
    assert len(load_sts(os.path.join(SEMEVAL, "STS12"), split="MSRpar")) == 750
    assert len(load_sts(os.path.join(SEMEVAL, "STS16"))) == 1186  # 4-column input, sparse gold
    with pytest.raises(FileNotFoundError, match="point `path` at one of them"):
        load_sts(SEMEVAL)


def test_jsonl_goes_through_the_one_reader_and_may_be_gzipped(tmp_path):
    import gzip

    rows = [{"sentence1": "a", "sentence2": "b", "label": 1}, {"text1": "c", "text2": "d", "score": 2.5}]
    path = tmp_path / "pairs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\ufeff" + "".join(json.dumps(r) + "\n" for r in rows) + "\n")  # a BOM and a blank line
    data = load_sts(str(path))  # format auto: jsonl
    assert (data.text1, data.text2, data.scores) == (["a", "c"], ["b", "d"], [1.0, 2.5])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text1": "a", "text2": "b", "score": 1}\n{"text1": "\xff"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid UTF-8: byte 0xff at column 12"):
        load_sts(str(bad))
    bad.write_text('{"text1": "a", "text2": "b", "score": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: expected a JSON object, got list"):
        load_sts(str(bad))
