"""``compute_retrieval_metrics`` and ``RetrievalEvaluator`` against pytrec_eval on real BEIR subsets.

A deterministic lexical model (TF-IDF + a 64-d truncated SVD fitted on the corpus, sklearn) ranks the
shared MS MARCO (graded qrels 1-3) and DBPedia (with score-0 rows) subsets. pytrec_eval
(trec_eval's C code) is the independent reference: ``ndcg_cut`` (linear gains, ideal DCG from every
judged document), ``recall`` (relevance >= 1), and ``recip_rank`` on the run cut at k (MRR@k).
Queries without judgments are in neither average (pytrec_eval scores only judged queries).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from embedlight.evaluation.beir import load_beir
from embedlight.evaluation.retrieval import RetrievalEvaluator, compute_retrieval_metrics

pytrec_eval = pytest.importorskip("pytrec_eval")

K_VALUES = (1, 3, 10, 100)
SUBSETS = ("retrieval_msmarco_subset", "retrieval_dbpedia_subset")


class LSAEncoder:
    """TF-IDF + truncated SVD, fitted once on the corpus: deterministic, no model weights."""

    def __init__(self, corpus: list[str], dim: int = 64) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(sublinear_tf=True).fit(corpus)
        self.svd = TruncatedSVD(dim, algorithm="arpack", random_state=0).fit(self.tfidf.transform(corpus))

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        return torch.tensor(self.svd.transform(self.tfidf.transform(list(texts))), dtype=torch.float32)


def _pytrec(qrels, run, k_values=K_VALUES):
    """Per-query ``{qid: {"ndcg@k", "recall@k", "mrr@k"}}`` from pytrec_eval.

    ``run`` maps query -> ranked doc ids; trec_eval gets strictly decreasing scores, so its ranking
    (score, then doc id on ties) is exactly the given one. MRR@k is ``recip_rank`` of the run cut at k.
    """
    cuts = ",".join(str(k) for k in k_values)
    full = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{cuts}", f"recall.{cuts}"})
    scored = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()}
    out = {q: {} for q in qrels}
    for q, m in full.evaluate(scored).items():
        for k in k_values:
            out[q][f"ndcg@{k}"] = m[f"ndcg_cut_{k}"]
            out[q][f"recall@{k}"] = m[f"recall_{k}"]
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    for k in k_values:
        cut = {q: {d: s for d, s in docs.items() if s > len(run[q]) - k} for q, docs in scored.items()}
        for q, m in mrr.evaluate(cut).items():
            out[q][f"mrr@{k}"] = m["recip_rank"]
    return out


@pytest.fixture(scope="module", params=SUBSETS)
def task(request):
    from tests.conftest import SHARED

    path = os.path.join(SHARED, request.param)
    if not os.path.isdir(path):
        pytest.skip(f"shared data not found at {path}")
    data = load_beir(path)
    encoder = LSAEncoder(data.doc_texts)
    q = torch.nn.functional.normalize(encoder.encode(data.query_texts).double(), dim=-1)  # (Q, 64)
    d = torch.nn.functional.normalize(encoder.encode(data.doc_texts).double(), dim=-1)  # (N, 64)
    order = torch.argsort(q @ d.T, dim=1, descending=True, stable=True)[:, : max(K_VALUES)]  # (Q, 100)
    run = {qid: [data.doc_ids[j] for j in row] for qid, row in zip(data.query_ids, order.tolist())}
    return path, data, encoder, run


def test_per_query_metrics_match_pytrec_eval(task):
    _, data, _, run = task
    reference = _pytrec(data.qrels, run)
    assert len(reference) == len(data.query_ids) >= 40
    assert any(0 in judged.values() for judged in data.qrels.values()) or "msmarco" in task[0]
    for qid in data.query_ids:
        ours = compute_retrieval_metrics({qid: data.qrels[qid]}, {qid: run[qid]}, K_VALUES)
        for key, value in reference[qid].items():
            assert ours[key] == pytest.approx(value, abs=1e-6), f"{qid} {key}"
    # the averages too, over every judged query
    ours = compute_retrieval_metrics(data.qrels, run, K_VALUES)
    for key in ours:
        mean = sum(reference[q][key] for q in data.query_ids) / len(data.query_ids)
        assert ours[key] == pytest.approx(mean, abs=1e-6), key
    assert 0.0 < ours["ndcg@10"] < 1.0 and ours["mrr@10"] > ours["ndcg@1"] * 0.5  # a non-trivial ranking


def test_unjudged_queries_and_score_zero_judgments_count_as_in_pytrec_eval(task):
    """A query whose judgments are all 0 is skipped by both; a 0-score document at rank 1 adds no gain."""
    _, data, _, run = task
    qid = data.query_ids[0]
    zero_only = {"extra": {doc: 0 for doc in run[qid][:5]}}
    assert set(
        pytrec_eval.RelevanceEvaluator(zero_only, {"ndcg_cut.10"}).evaluate({"extra": {"x": 1.0}})
    ) <= {"extra"}
    with pytest.raises(ValueError, match="No query"):
        compute_retrieval_metrics(zero_only, {"extra": run[qid]})
    judged = dict(data.qrels[qid])
    judged[run[qid][0]] = 0  # the top document judged non-relevant
    if not any(s > 0 for s in judged.values()):
        pytest.skip("the first query has a single relevant document")
    ours = compute_retrieval_metrics({qid: judged}, {qid: run[qid]}, K_VALUES)
    ref = _pytrec({qid: judged}, {qid: run[qid]})[qid]
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key


def test_evaluator_end_to_end_matches_pytrec_eval(task):
    """The evaluator's own encoding and top-k search, scored by pytrec_eval on its real similarities."""
    path, data, encoder, _ = task
    ours = RetrievalEvaluator(path, k_values=K_VALUES)(encoder)
    name = os.path.basename(path)
    q = torch.nn.functional.normalize(encoder.encode(data.query_texts), dim=-1).numpy()
    d = torch.nn.functional.normalize(encoder.encode(data.doc_texts), dim=-1).numpy()
    scores = q @ d.T  # (Q, N) float32, as the evaluator computes them
    run = {}
    for i, qid in enumerate(data.query_ids):
        top = np.argsort(-scores[i], kind="stable")[: max(K_VALUES)]
        run[qid] = [data.doc_ids[j] for j in top]
    reference = _pytrec(data.qrels, run)
    for key in (f"{m}@{k}" for k in K_VALUES for m in ("ndcg", "recall", "mrr")):
        mean = sum(reference[qid][key] for qid in data.query_ids) / len(data.query_ids)
        assert ours[f"{name}/{key}"] == pytest.approx(mean, abs=1e-6), key
