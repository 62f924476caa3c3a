"""Reranking: MAP/MRR on a 2-query hand case, the MTEB-1 JSONL reader and the BEIR-built candidates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlight.evaluation import RerankingEvaluator
from embedlight.evaluation.reranking import load_reranking, reranking_metrics
from tests.evaluation.fakes import TableEncoder
from tests.helpers import write_beir


def test_map_mrr_two_query_hand_case():
    # q1 ranked: + - + -> AP = (1 + 2/3)/2, RR = 1 ; q2 ranked: - - + -> AP = 1/3, RR = 1/3
    scores = [np.array([0.9, 0.5, 0.7, 0.1]), np.array([0.2, 0.9, 0.8])]
    relevant = [[1, 1, 0, 0], [1, 0, 0]]
    out = reranking_metrics(scores, relevant, mrr_at=2)
    assert out["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3) / 2)
    assert out["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["mrr@2"] == pytest.approx((1 + 0) / 2)  # q2's first relevant is at rank 3


def test_evaluator_jsonl(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [{"query": "q", "positive": ["p1"], "negative": ["n1", "n2"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    enc = TableEncoder({"q": [1, 0], "p1": [0.6, 0.8], "n1": [1, 0.1], "n2": [0, 1]})
    out = RerankingEvaluator(str(path), name="r")(enc)
    # ranking n1 (0.995), p1 (0.6), n2 (0) -> AP 1/2, RR 1/2
    assert out == pytest.approx({"r/map": 0.5, "r/mrr": 0.5, "r/mrr@10": 0.5})
    assert ("document", None) in enc.calls and ("query", None) in enc.calls


def test_jsonl_error_names_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"query": "q", "positive": ["a"], "negative": []}\n{"query": "q", "positive": "a"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: field 'positive'"):
        load_reranking(str(path))


def test_beir_candidates_are_judged_plus_sampled(tmp_path):
    folder = write_beir(str(tmp_path / "beir"), n=12)
    data = load_reranking(folder, "beir", n_negatives=4, relevance_threshold=1, seed=0)
    assert len(data.queries) == 12
    for cands, rel in zip(data.candidates, data.relevant, strict=True):
        assert len(cands) == 5 and sum(rel) == 1 and rel[0] == 1  # the judged doc, then 4 unjudged
    again = load_reranking(folder, "beir", n_negatives=4, relevance_threshold=1, seed=0)
    assert again.candidates == data.candidates


def test_real_msmarco_reranking_counts(shared_data):
    data = load_reranking(f"{shared_data}/retrieval_msmarco_subset", "beir", n_negatives=20)
    assert len(data.queries) == 43
    judged = sum(len(c) - 20 for c in data.candidates)
    assert judged == 4102  # every qrel row (grades 1-3) of the 43 judged queries
    assert all(0 < sum(r) < len(r) for r in data.relevant)


def test_malformed_reranking_file_names_file_and_line(tmp_path):
    path = tmp_path / "rerank.jsonl"
    path.write_text('{"query": "q", "positive": ["a"], "negative": ["b"]}\n{"query": "q",\n')
    with pytest.raises(ValueError, match=r"rerank.jsonl:2: invalid JSON"):
        load_reranking(str(path))
    path.write_text('{"query": "q", "positive": "a", "negative": ["b"]}\n')
    with pytest.raises(ValueError, match=r"rerank.jsonl:1: field 'positive' must be a list"):
        load_reranking(str(path))
