"""Tests for embedlight.evaluation.retrieval with hand-made embeddings and hand-computed metrics."""

from __future__ import annotations

import json
import logging
import math
import os

import pytest
import torch

from embedlight.evaluation import Evaluator, RetrievalEvaluator, TextEncoder, run_evaluators
from embedlight.evaluation import retrieval as retrieval_mod
from embedlight.evaluation.beir import load_beir, read_qrels
from embedlight.evaluation.retrieval import compute_retrieval_metrics

SHARED = os.environ.get(
    "EMBEDLIGHT_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
)
SHARED_DBPEDIA = os.path.join(SHARED, "retrieval_dbpedia_subset")


class LookupEncoder:
    """Fake encoder returning hand-made vectors looked up by text; records every call."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[tuple[str, str | None, list[str]]] = []

    def encode(
        self,
        texts: list[str],
        *,
        kind: str = "query",
        instruction: str | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> torch.Tensor:
        self.calls.append((kind, instruction, list(texts)))
        return torch.tensor([self.table[t] for t in texts], dtype=torch.float32)  # (N, D)


class CharEncoder:
    """Fake encoder: bag-of-characters counts over a small alphabet."""

    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        out = torch.zeros(len(texts), len(self.alphabet))  # (N, A)
        for i, text in enumerate(texts):
            for ch in text.lower():
                j = self.alphabet.find(ch)
                if j >= 0:
                    out[i, j] += 1
        out[:, -1] += 1e-3  # avoid all-zero rows
        return out


def write_beir(
    root,
    corpus: list[dict],
    queries: list[dict],
    qrels: list[tuple[str, str, int]],
    *,
    header: bool = True,
    split: str = "test",
) -> str:
    """Write a BEIR folder under ``root`` and return its path."""
    os.makedirs(os.path.join(root, "qrels"), exist_ok=True)
    with open(os.path.join(root, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for row in corpus:
            f.write(json.dumps(row) + "\n")
    with open(os.path.join(root, "queries.jsonl"), "w", encoding="utf-8") as f:
        for row in queries:
            f.write(json.dumps(row) + "\n")
    with open(os.path.join(root, "qrels", f"{split}.tsv"), "w", encoding="utf-8") as f:
        if header:
            f.write("query-id\tcorpus-id\tscore\n")
        for qid, did, score in qrels:
            f.write(f"{qid}\t{did}\t{score}\n")
    return str(root)


def doc(did: str, text: str, title: str = "") -> dict:
    return {"_id": did, "title": title, "text": text}


def query(qid: str, text: str) -> dict:
    return {"_id": qid, "text": text}


# Unit vectors at angles (degrees) in the plane: a smaller angle difference = higher cosine.
def angle(deg: float) -> list[float]:
    rad = math.radians(deg)
    return [math.cos(rad), math.sin(rad)]


@pytest.fixture
def perfect_task(tmp_path):
    """Two queries; each one's only relevant document is its nearest neighbour."""
    path = write_beir(
        tmp_path / "perfect",
        corpus=[doc("d1", "doc one"), doc("d2", "doc two"), doc("d3", "doc three")],
        queries=[query("q1", "query one"), query("q2", "query two")],
        qrels=[("q1", "d1", 1), ("q2", "d2", 1)],
    )
    table = {
        "query one": angle(0),
        "query two": angle(90),
        "doc one": angle(5),
        "doc two": angle(85),
        "doc three": angle(45),
    }
    return path, LookupEncoder(table)


def test_perfect_ranking_scores_one(perfect_task):
    path, enc = perfect_task
    metrics = RetrievalEvaluator(path)(enc)
    assert metrics["perfect/ndcg@10"] == pytest.approx(1.0)
    assert metrics["perfect/mrr@10"] == pytest.approx(1.0)
    assert metrics["perfect/recall@100"] == pytest.approx(1.0)
    assert set(metrics) >= {"perfect/ndcg@10", "perfect/recall@100", "perfect/mrr@10"}
    assert all(k.startswith("perfect/") for k in metrics)


def test_relevant_at_rank_two(tmp_path):
    # Ranking for q1: d_wrong (cos 0.996) > d_rel (cos 0.94) > d_far.
    path = write_beir(
        tmp_path / "rank2",
        corpus=[doc("d_rel", "relevant"), doc("d_wrong", "distractor"), doc("d_far", "far")],
        queries=[query("q1", "the query")],
        qrels=[("q1", "d_rel", 1)],
    )
    enc = LookupEncoder(
        {"the query": angle(0), "distractor": angle(5), "relevant": angle(20), "far": angle(90)}
    )
    metrics = RetrievalEvaluator(path, name="r2")(enc)
    assert metrics["r2/mrr@10"] == pytest.approx(0.5)
    assert metrics["r2/ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert metrics["r2/recall@100"] == pytest.approx(1.0)
    assert metrics["r2/recall@10"] == pytest.approx(1.0)


def test_mean_over_queries_and_unjudged_queries_skipped(tmp_path):
    # q1 perfect (1.0), q2 relevant at rank 2; q3 only judged non-relevant; q4 has no qrels.
    path = write_beir(
        tmp_path / "mix",
        corpus=[doc("a", "A"), doc("b", "B")],
        queries=[query("q1", "Q1"), query("q2", "Q2"), query("q3", "Q3"), query("q4", "Q4")],
        qrels=[("q1", "a", 1), ("q2", "b", 1), ("q3", "a", 0)],
    )
    enc = LookupEncoder(
        {"Q1": angle(0), "Q2": angle(0), "Q3": angle(0), "Q4": angle(0), "A": angle(10), "B": angle(40)}
    )
    ev = RetrievalEvaluator(path)
    metrics = ev(enc)
    assert ev.data.query_ids == ["q1", "q2"]
    assert metrics["mix/mrr@10"] == pytest.approx((1.0 + 0.5) / 2)
    assert metrics["mix/ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    # Only evaluable queries are encoded.
    assert enc.calls[0][2] == ["Q1", "Q2"]


def test_graded_gains_and_zero_score(tmp_path):
    # Ranking: n0 (judged, score 0), b (score 1), a (score 2), c (unjudged).
    path = write_beir(
        tmp_path / "graded",
        corpus=[doc("a", "A"), doc("b", "B"), doc("c", "C"), doc("n0", "N0")],
        queries=[query("q", "Q")],
        qrels=[("q", "a", 2), ("q", "b", 1), ("q", "n0", 0)],
    )
    enc = LookupEncoder({"Q": angle(0), "N0": angle(1), "B": angle(10), "A": angle(20), "C": angle(80)})
    metrics = RetrievalEvaluator(path)(enc)
    dcg = 0 / math.log2(2) + 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert metrics["graded/ndcg@10"] == pytest.approx(dcg / idcg)
    assert metrics["graded/mrr@10"] == pytest.approx(0.5)  # score-0 doc is not relevant
    assert metrics["graded/recall@100"] == pytest.approx(1.0)


@pytest.mark.parametrize("header", [True, False])
def test_qrels_with_and_without_header(tmp_path, perfect_task, header):
    _, enc = perfect_task
    path = write_beir(
        tmp_path / f"h{int(header)}",
        corpus=[doc("d1", "doc one"), doc("d2", "doc two"), doc("d3", "doc three")],
        queries=[query("q1", "query one"), query("q2", "query two")],
        qrels=[("q1", "d1", 1), ("q2", "d2", 1), ("q2", "d3", 0)],
        header=header,
    )
    qrels = read_qrels(os.path.join(path, "qrels", "test.tsv"))
    assert qrels == {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 0}}
    assert RetrievalEvaluator(path)(enc)[f"h{int(header)}/ndcg@10"] == pytest.approx(1.0)


def test_read_qrels_whitespace_and_trec_format(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("q1 d1 1\nq1 0 d2 2\n\nq2\td3\t1.0\n", encoding="utf-8")
    assert read_qrels(str(p)) == {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}}


def test_cutoff_and_missing_relevant_docs():
    # Relevant docs at rank 11 and one absent from the ranking entirely.
    ranking = [f"x{i}" for i in range(10)] + ["rel1"] + [f"y{i}" for i in range(50)]
    metrics = compute_retrieval_metrics({"q": {"rel1": 1, "rel2": 1}}, {"q": ranking}, k_values=(10, 100))
    assert metrics["ndcg@10"] == 0.0
    assert metrics["mrr@10"] == 0.0
    assert metrics["recall@10"] == 0.0
    assert metrics["recall@100"] == pytest.approx(0.5)
    assert metrics["mrr@100"] == pytest.approx(1 / 11)
    idcg = 1 + 1 / math.log2(3)
    assert metrics["ndcg@100"] == pytest.approx((1 / math.log2(12)) / idcg)


def test_title_is_prepended_and_instructions_forwarded(tmp_path):
    path = write_beir(
        tmp_path / "titles",
        corpus=[doc("d1", "body one", title="Title"), doc("d2", "body two", title="  ")],
        queries=[query("q1", "q")],
        qrels=[("q1", "d1", 1)],
    )
    enc = LookupEncoder({"q": [1.0, 0.0], "Title body one": [1.0, 0.1], "body two": [0.0, 1.0]})
    RetrievalEvaluator(path, query_instruction="Represent the query: ", doc_instruction="", batch_size=7)(enc)
    assert enc.calls[0] == ("query", "Represent the query: ", ["q"])
    assert enc.calls[1] == ("document", "", ["Title body one", "body two"])


def test_max_corpus_keeps_judged_docs(tmp_path):
    corpus = [doc(f"o{i}", f"other {i}") for i in range(5)] + [doc("rel", "rel"), doc("neg", "neg")]
    corpus += [doc(f"z{i}", f"late {i}") for i in range(5)]
    path = write_beir(
        tmp_path / "budget",
        corpus=corpus,
        queries=[query("q1", "q1"), query("q2", "q2")],
        qrels=[("q1", "rel", 1), ("q1", "neg", 0), ("q2", "o4", 1)],
    )
    data = load_beir(path, max_corpus=4)
    # Judged: rel, neg, o4 (3 docs) + first unjudged (o0) = 4.
    assert data.doc_ids == ["o0", "o4", "rel", "neg"]
    data = load_beir(path, max_queries=1, max_corpus=3)
    assert data.query_ids == ["q1"]
    assert data.doc_ids == ["o0", "rel", "neg"]
    data = load_beir(path, max_corpus=1)  # budget smaller than the judged set: judged kept anyway
    assert data.doc_ids == ["o4", "rel", "neg"]


def test_missing_relevant_doc_counts_in_recall(tmp_path, caplog):
    path = write_beir(
        tmp_path / "missing",
        corpus=[doc("a", "A"), doc("b", "B")],
        queries=[query("q", "Q")],
        qrels=[("q", "a", 1), ("q", "ghost", 1)],
    )
    enc = LookupEncoder({"Q": angle(0), "A": angle(1), "B": angle(60)})
    with caplog.at_level(logging.WARNING):
        metrics = RetrievalEvaluator(path)(enc)
    assert "absent" in caplog.text
    assert metrics["missing/recall@100"] == pytest.approx(0.5)
    assert metrics["missing/ndcg@10"] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_chunked_topk_matches_full_sort(monkeypatch):
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(37, 8), dim=-1)  # (Q, D)
    d = torch.nn.functional.normalize(torch.randn(101, 8), dim=-1)  # (N, D)
    monkeypatch.setattr(retrieval_mod, "_QUERY_CHUNK", 5)
    monkeypatch.setattr(retrieval_mod, "_CORPUS_CHUNK", 7)
    top = retrieval_mod._top_k(q, d, 10)  # (Q, 10)
    expected = torch.argsort(q @ d.T, dim=1, descending=True)[:, :10]  # (Q, 10)
    assert torch.equal(top, expected)
    assert retrieval_mod._top_k(q, d[:4], 10).shape == (37, 4)  # k clipped to corpus size


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="BEIR folder not found"):
        RetrievalEvaluator(str(tmp_path / "nope"))
    path = write_beir(tmp_path / "bad", [doc("d", "t")], [query("q", "Q")], [("q", "d", 1)])
    with pytest.raises(FileNotFoundError, match="dev.tsv"):
        RetrievalEvaluator(path, split="dev")

    with open(os.path.join(path, "corpus.jsonl"), "a", encoding="utf-8") as f:
        f.write('{"_id": "d2"}\n')
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2: missing field 'text'"):
        load_beir(path)

    with open(os.path.join(path, "corpus.jsonl"), "w", encoding="utf-8") as f:
        f.write('{"_id": "d", "text": "t"}\n{"_id": "d", "text": "again"}\n')
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2: duplicate document _id 'd'"):
        load_beir(path)

    with open(os.path.join(path, "queries.jsonl"), "w", encoding="utf-8") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"queries\.jsonl:1: invalid JSON"):
        load_beir(path)

    qrels_path = os.path.join(path, "qrels", "test.tsv")
    with open(qrels_path, "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\nq\td\n")
    with pytest.raises(ValueError, match=r"test\.tsv:2: expected 3 columns"):
        read_qrels(qrels_path)
    with open(qrels_path, "w", encoding="utf-8") as f:
        f.write("q\td\t1\nq\td2\thigh\n")
    with pytest.raises(ValueError, match=r"test\.tsv:2: field 'score'"):
        read_qrels(qrels_path)

    only_zero = write_beir(tmp_path / "zero", [doc("d", "t")], [query("q", "Q")], [("q", "d", 0)])
    with pytest.raises(ValueError, match="No query with a relevant judgment"):
        load_beir(only_zero)


def test_run_evaluators_merges_and_checks_names(perfect_task, tmp_path, caplog):
    path, enc = perfect_task
    assert isinstance(enc, TextEncoder)
    assert isinstance(RetrievalEvaluator(path), Evaluator)

    class Constant(Evaluator):
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, encoder):
            return {f"{self.name}/x": 0.25}

    with caplog.at_level(logging.INFO, logger="embedlight.evaluation.base"):
        merged = run_evaluators([RetrievalEvaluator(path), Constant("const")], enc)
    assert merged["perfect/ndcg@10"] == pytest.approx(1.0)
    assert merged["const/x"] == 0.25
    assert "perfect" in caplog.text and "const" in caplog.text
    with pytest.raises(ValueError, match="unique"):
        run_evaluators([Constant("a"), Constant("a")], enc)


@pytest.mark.skipif(not os.path.isdir(SHARED_DBPEDIA), reason="shared data not available")
def test_real_beir_subset_smoke():
    ev = RetrievalEvaluator(SHARED_DBPEDIA, max_queries=10, max_corpus=300)
    assert ev.name == "retrieval_dbpedia_subset"
    assert len(ev.data.query_ids) == 10
    assert len(ev.data.doc_ids) >= 300
    metrics = ev(CharEncoder())
    for key in ("ndcg@10", "recall@100", "mrr@10"):
        assert 0.0 <= metrics[f"retrieval_dbpedia_subset/{key}"] <= 1.0
