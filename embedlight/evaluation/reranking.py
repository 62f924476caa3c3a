"""Reranking (MTEB's ``Reranking`` tasks: each query comes with its own candidate list).

Candidates are ranked by the cosine similarity of query and document embeddings. Metrics, averaged over
queries: MAP (average precision of each ranked list, ties grouped as in scikit-learn's
``average_precision_score``, which MTEB uses per query) and MRR (reciprocal rank of the first relevant
candidate, over the whole list and cut at 10).

Data:

* ``format="jsonl"``: MTEB-1 reranking rows ``{"query": str, "positive": [str], "negative": [str]}``.
* ``format="beir"``: built from a BEIR folder with graded qrels: a query's candidates are its judged
  documents plus ``n_negatives`` unjudged corpus documents drawn with ``seed``; judged documents with
  score >= ``relevance_threshold`` are relevant. The default threshold 2 is TREC-DL's binarisation for
  MAP on graded passage judgments (Craswell et al., 2020, "Overview of the TREC 2019 deep learning
  track").
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.beir import load_beir
from embedlight.evaluation.common import embed_normalized
from embedlight.evaluation.pair_classification import average_precision
from embedlight.registry import register
from embedlight.utils.io import iter_records

log = logging.getLogger(__name__)

__all__ = ["RerankingData", "RerankingEvaluator", "load_reranking", "reranking_metrics"]


@dataclass
class RerankingData:
    """Queries with their candidates and 0/1 relevance (aligned lists)."""

    queries: list[str]
    candidates: list[list[str]]
    relevant: list[list[int]]


def reranking_metrics(
    scores: list[np.ndarray], relevant: list[list[int]], mrr_at: int = 10
) -> dict[str, float]:
    """Mean AP, MRR and MRR@``mrr_at`` over queries with at least one relevant candidate.

    Args:
        scores: Per query, ``(C_q,)`` candidate scores.
        relevant: Per query, 0/1 labels aligned with the scores.
    """
    aps, rrs, rrs_at = [], [], []
    for s, y in zip(scores, relevant, strict=True):
        y = np.asarray(y, dtype=np.float64)
        if y.sum() == 0:
            continue
        s = np.asarray(s, dtype=np.float64)
        aps.append(average_precision(s, y))
        order = np.argsort(-s, kind="mergesort")  # best first, ties in candidate order
        first = int(np.flatnonzero(y[order])[0])  # 0-based rank of the first relevant candidate
        rrs.append(1.0 / (first + 1))
        rrs_at.append(1.0 / (first + 1) if first < mrr_at else 0.0)
    if not aps:
        raise ValueError("no query has a relevant candidate")
    return {"map": float(np.mean(aps)), "mrr": float(np.mean(rrs)), f"mrr@{mrr_at}": float(np.mean(rrs_at))}


def _load_jsonl(path: str) -> RerankingData:
    data = RerankingData([], [], [])
    for lineno, row in iter_records(path, "reranking file"):
        for key, kind in (("query", str), ("positive", list), ("negative", list)):
            if not isinstance(row.get(key), kind):
                raise ValueError(f"{path}:{lineno}: field {key!r} must be a {kind.__name__}")
        data.queries.append(row["query"])
        data.candidates.append(list(row["positive"]) + list(row["negative"]))
        data.relevant.append([1] * len(row["positive"]) + [0] * len(row["negative"]))
    return data


def _from_beir(path: str, split: str, threshold: int, n_negatives: int, seed: int) -> RerankingData:
    beir = load_beir(path, split)
    text = dict(zip(beir.doc_ids, beir.doc_texts, strict=True))
    rng = np.random.default_rng(seed)
    data = RerankingData([], [], [])
    for qid, qtext in zip(beir.query_ids, beir.query_texts, strict=True):
        judged = [d for d in beir.qrels[qid] if d in text]
        judged_set = set(judged)
        pool = [d for d in beir.doc_ids if d not in judged_set]
        negatives = [pool[i] for i in rng.choice(len(pool), size=min(n_negatives, len(pool)), replace=False)]
        ids = judged + negatives
        data.queries.append(qtext)
        data.candidates.append([text[d] for d in ids])
        data.relevant.append([int(beir.qrels[qid].get(d, 0) >= threshold) for d in ids])
    return data


def load_reranking(
    path: str,
    format: str = "auto",
    split: str = "test",
    relevance_threshold: int = 2,
    n_negatives: int = 50,
    seed: int = 0,
) -> RerankingData:
    """Read a reranking set (see the module docstring)."""
    if format == "auto":
        format = "beir" if os.path.isdir(path) else "jsonl"
    if format == "jsonl":
        return _load_jsonl(path)
    if format == "beir":
        return _from_beir(path, split, relevance_threshold, n_negatives, seed)
    raise ValueError(f"reranking format must be 'jsonl', 'beir' or 'auto', got {format!r}")


@register("evaluator", "reranking")
class RerankingEvaluator(Evaluator):
    """MAP / MRR of cosine reranking.

    Args:
        path: JSONL file or BEIR folder.
        name: Metric prefix (default: the file/folder name).
        format: ``auto``, ``jsonl`` or ``beir``.
        split: BEIR qrels split.
        relevance_threshold: BEIR: judged score that counts as relevant.
        n_negatives: BEIR: unjudged documents sampled per query.
        max_queries: Evaluate the first ``max_queries`` queries.
        seed: Negative sampling seed.
        query_instruction: Query instruction (None: encoder default, "" none).
        doc_instruction: Document instruction.
        batch_size: Encoding batch size.
    """

    def __init__(
        self,
        path: str,
        name: str | None = None,
        format: str = "auto",
        split: str = "test",
        relevance_threshold: int = 2,
        n_negatives: int = 50,
        max_queries: int | None = None,
        seed: int = 0,
        query_instruction: str | None = None,
        doc_instruction: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"reranking data not found: {self.path}")
        self.name = name or os.path.splitext(os.path.basename(self.path.rstrip(os.sep)))[0]
        self.format, self.split = format, split
        self.relevance_threshold, self.n_negatives, self.seed = relevance_threshold, n_negatives, seed
        self.max_queries = max_queries
        self.query_instruction, self.doc_instruction = query_instruction, doc_instruction
        self.batch_size = batch_size
        self._data: RerankingData | None = None

    @property
    def data(self) -> RerankingData:
        """The queries and candidates (loaded on first access)."""
        if self._data is None:
            d = load_reranking(
                self.path, self.format, self.split, self.relevance_threshold, self.n_negatives, self.seed
            )
            n = self.max_queries or len(d.queries)
            self._data = RerankingData(d.queries[:n], d.candidates[:n], d.relevant[:n])
            log.info(
                "Loaded %s: %d queries, %d candidates", self.name, n, sum(map(len, self._data.candidates))
            )
        return self._data

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """``{name}/map``, ``{name}/mrr``, ``{name}/mrr@10``."""
        data = self.data
        q = embed_normalized(
            encoder,
            data.queries,
            kind="query",
            instruction=self.query_instruction,
            batch_size=self.batch_size,
        )
        docs = [t for cands in data.candidates for t in cands]
        d = embed_normalized(
            encoder, docs, kind="document", instruction=self.doc_instruction, batch_size=self.batch_size
        )
        scores, start = [], 0
        for i, cands in enumerate(data.candidates):
            scores.append(d[start : start + len(cands)] @ q[i])  # (C_q,)
            start += len(cands)
        return {f"{self.name}/{k}": v for k, v in reranking_metrics(scores, data.relevant).items()}
