"""Dense retrieval evaluation on BEIR-format folders.

A BEIR folder looks like::

    <path>/corpus.jsonl       {"_id": ..., "title": ..., "text": ...}   one per line
    <path>/queries.jsonl      {"_id": ..., "text": ...}                  one per line
    <path>/qrels/<split>.tsv  query-id <TAB> corpus-id <TAB> score       optional header line

Metrics follow the definitions of ``pytrec_eval`` as used by BEIR/MTEB:

* ``ndcg@k``: gain = qrel score (linear, not ``2**rel - 1``), discount ``1 / log2(rank + 1)``,
  ideal DCG computed from *all* judged-relevant documents of the query (including ones
  missing from the corpus or dropped by ``max_corpus``), cut at ``k``.
* ``recall@k``: fraction of the query's relevant documents (score > 0) found in the top ``k``.
* ``mrr@k``: reciprocal rank of the first relevant document in the top ``k`` (0 if none).

Scores are averaged over the evaluated queries, i.e. those with at least one relevant
(score > 0) judgment that also appear in ``queries.jsonl``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.utils.io import iter_records

logger = logging.getLogger(__name__)

__all__ = ["RetrievalData", "RetrievalEvaluator", "compute_retrieval_metrics", "load_beir", "read_qrels"]

# Rows of the (queries x corpus) similarity matrix materialised at once.
_QUERY_CHUNK = 256
_CORPUS_CHUNK = 65536


@dataclass
class RetrievalData:
    """An in-memory BEIR task restricted to the queries that will be evaluated.

    Attributes:
        query_ids: Ids of evaluated queries, in ``queries.jsonl`` order.
        query_texts: Query texts, aligned with ``query_ids``.
        doc_ids: Ids of the documents to search, in ``corpus.jsonl`` order.
        doc_texts: Document texts (``title + " " + text`` when the title is non-empty).
        qrels: ``{query_id: {doc_id: score}}`` for the evaluated queries (all judgments,
            including score 0).
    """

    query_ids: list[str]
    query_texts: list[str]
    doc_ids: list[str]
    doc_texts: list[str]
    qrels: dict[str, dict[str, int]]


def _field(obj: dict, key: str, path: str, lineno: int, *, required: bool = True) -> str:
    """Read a string-like field (ints are accepted for ids) with a precise error message."""
    if key not in obj or obj[key] is None:
        if required:
            raise ValueError(f"{path}:{lineno}: missing field {key!r}")
        return ""
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{path}:{lineno}: field {key!r} must be a string, got {type(value).__name__}")
    return str(value)


def _parse_score(raw: str) -> int:
    """Parse a qrel score (``"1"``, ``"1.0"``); raises ValueError if not an integer."""
    try:
        return int(raw)
    except ValueError:
        value = float(raw)  # may raise ValueError, handled by the caller
        if not value.is_integer():
            raise ValueError(f"non-integer relevance {raw!r}") from None
        return int(value)


def read_qrels(path: str) -> dict[str, dict[str, int]]:
    """Read a BEIR/TREC-style qrels TSV (``query-id corpus-id score``).

    A header line is detected when the first non-blank line's third column is not a
    number (e.g. ``query-id<TAB>corpus-id<TAB>score``). Columns may be separated by tabs,
    or by whitespace when the line has no tab. If a (query, doc) pair is repeated, the
    last score wins.

    Args:
        path: The TSV file.

    Returns:
        ``{query_id: {doc_id: score}}`` including score-0 (judged non-relevant) rows.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: On a malformed line (wrong number of columns, non-integer score).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"qrels file not found: {path}")
    qrels: dict[str, dict[str, int]] = {}
    first = True
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            cols = [c.strip() for c in cols]
            if first:
                first = False
                if len(cols) >= 3:
                    try:
                        float(cols[-1])
                    except ValueError:
                        continue  # header line
            if len(cols) == 4:  # TREC format: qid iteration docid rel
                cols = [cols[0], cols[2], cols[3]]
            if len(cols) != 3:
                raise ValueError(
                    f"{path}:{lineno}: expected 3 columns (query-id, corpus-id, score), got {len(cols)}"
                )
            qid, did, raw_score = cols
            if not qid or not did:
                raise ValueError(f"{path}:{lineno}: empty {'query-id' if not qid else 'corpus-id'}")
            try:
                score = _parse_score(raw_score)
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: field 'score' must be an integer, got {raw_score!r}"
                ) from None
            qrels.setdefault(qid, {})[did] = score
    return qrels


def load_beir(
    path: str,
    split: str = "test",
    max_queries: int | None = None,
    max_corpus: int | None = None,
) -> RetrievalData:
    """Load a BEIR folder, keeping only evaluable queries.

    Args:
        path: BEIR folder.
        split: Qrels split, i.e. ``qrels/<split>.tsv``.
        max_queries: Keep only the first ``max_queries`` evaluable queries (file order).
        max_corpus: Corpus budget. All documents judged (any score, including 0) for the
            kept queries are always kept, then the remaining budget is filled with the
            other documents in ``corpus.jsonl`` order. If the judged documents alone
            exceed the budget they are all kept anyway, so the corpus may be larger than
            ``max_corpus``. Subsampling makes the task easier: scores are not comparable
            with full-corpus numbers.

    Returns:
        The loaded task.

    Raises:
        FileNotFoundError: If the folder or one of its files is missing.
        ValueError: On malformed input, duplicate ids, or when no query can be evaluated.
    """
    corpus_path = os.path.join(path, "corpus.jsonl")
    queries_path = os.path.join(path, "queries.jsonl")
    qrels_path = os.path.join(path, "qrels", f"{split}.tsv")
    for p in (corpus_path, queries_path, qrels_path):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"BEIR file not found: {p}")

    qrels_all = read_qrels(qrels_path)
    relevant_qids = {qid for qid, judged in qrels_all.items() if any(s > 0 for s in judged.values())}

    query_ids: list[str] = []
    query_texts: list[str] = []
    seen_queries: set[str] = set()
    for lineno, obj in iter_records(queries_path, "BEIR queries file"):
        qid = _field(obj, "_id", queries_path, lineno)
        text = _field(obj, "text", queries_path, lineno)
        if qid in seen_queries:
            raise ValueError(f"{queries_path}:{lineno}: duplicate query _id {qid!r}")
        seen_queries.add(qid)
        if qid in relevant_qids:
            query_ids.append(qid)
            query_texts.append(text)
    missing = relevant_qids - seen_queries
    if missing:
        logger.warning(
            "%s: %d judged queries are absent from %s and are skipped (e.g. %r)",
            qrels_path,
            len(missing),
            queries_path,
            sorted(missing)[0],
        )
    if max_queries is not None:
        if max_queries <= 0:
            raise ValueError(f"max_queries must be positive, got {max_queries}")
        query_ids, query_texts = query_ids[:max_queries], query_texts[:max_queries]
    if not query_ids:
        raise ValueError(
            f"No query with a relevant judgment (score > 0) in {qrels_path} found in {queries_path}"
        )
    qrels = {qid: qrels_all[qid] for qid in query_ids}
    judged_docs = {did for judged in qrels.values() for did in judged}

    if max_corpus is not None and max_corpus <= 0:
        raise ValueError(f"max_corpus must be positive, got {max_corpus}")
    # Budget left for unjudged documents once every judged one is kept.
    other_budget = None if max_corpus is None else max(0, max_corpus - len(judged_docs))
    doc_ids: list[str] = []
    doc_texts: list[str] = []
    seen_docs: set[str] = set()
    n_other = 0
    for lineno, obj in iter_records(corpus_path, "BEIR corpus file"):
        did = _field(obj, "_id", corpus_path, lineno)
        text = _field(obj, "text", corpus_path, lineno)
        title = _field(obj, "title", corpus_path, lineno, required=False).strip()
        if did in seen_docs:
            raise ValueError(f"{corpus_path}:{lineno}: duplicate document _id {did!r}")
        seen_docs.add(did)
        if did not in judged_docs:
            if other_budget is not None and n_other >= other_budget:
                continue
            n_other += 1
        doc_ids.append(did)
        doc_texts.append(f"{title} {text}" if title else text)
    if not doc_ids:
        raise ValueError(f"Empty corpus: {corpus_path}")
    relevant_missing = sum(
        1 for judged in qrels.values() for did, s in judged.items() if s > 0 and did not in seen_docs
    )
    if relevant_missing:
        logger.warning(
            "%s: %d relevant judgments point to documents absent from %s; they still count "
            "in recall and ideal DCG (as in pytrec_eval)",
            qrels_path,
            relevant_missing,
            corpus_path,
        )
    return RetrievalData(query_ids, query_texts, doc_ids, doc_texts, qrels)


def compute_retrieval_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Sequence[str]],
    k_values: Sequence[int] = (10, 100),
) -> dict[str, float]:
    """Compute mean nDCG@k, Recall@k and MRR@k (pytrec_eval/BEIR definitions).

    Args:
        qrels: ``{query_id: {doc_id: score}}``; score > 0 means relevant and is the gain.
        rankings: ``{query_id: [doc_id, ...]}`` best first; every query of ``qrels``
            with a relevant document must be present (a missing one scores 0).
        k_values: Cut-offs.

    Returns:
        ``{"ndcg@k": ..., "recall@k": ..., "mrr@k": ...}`` for each ``k`` (no name prefix),
        averaged over the queries that have at least one relevant judgment.

    Raises:
        ValueError: If no query has a relevant judgment.
    """
    sums = {f"{m}@{k}": 0.0 for k in k_values for m in ("ndcg", "recall", "mrr")}
    n = 0
    for qid, judged in qrels.items():
        gains = {did: float(s) for did, s in judged.items() if s > 0}
        if not gains:
            continue
        n += 1
        ranked = list(rankings.get(qid, ()))
        ideal = sorted(gains.values(), reverse=True)
        for k in k_values:
            top = ranked[:k]
            dcg = sum(gains.get(did, 0.0) / math.log2(rank + 2) for rank, did in enumerate(top))
            idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal[:k]))
            sums[f"ndcg@{k}"] += dcg / idcg
            sums[f"recall@{k}"] += sum(1 for did in top if did in gains) / len(gains)
            first = next((rank for rank, did in enumerate(top) if did in gains), None)
            sums[f"mrr@{k}"] += 0.0 if first is None else 1.0 / (first + 1)
    if n == 0:
        raise ValueError("No query has a relevant judgment (score > 0)")
    return {key: value / n for key, value in sums.items()}


@torch.no_grad()
def _top_k(queries: torch.Tensor, docs: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` most similar documents for each query, best first.

    Args:
        queries: ``(Q, D)`` L2-normalised query embeddings.
        docs: ``(N, D)`` L2-normalised document embeddings.
        k: Number of results per query (clipped to ``N``).

    Returns:
        ``(Q, min(k, N))`` long tensor of document indices.
    """
    k = min(k, docs.shape[0])
    out = []
    for qs in range(0, queries.shape[0], _QUERY_CHUNK):
        q = queries[qs : qs + _QUERY_CHUNK]  # (q, D)
        best_scores = torch.empty(q.shape[0], 0, dtype=q.dtype)  # (q, 0)
        best_idx = torch.empty(q.shape[0], 0, dtype=torch.long)  # (q, 0)
        for ds in range(0, docs.shape[0], _CORPUS_CHUNK):
            scores = q @ docs[ds : ds + _CORPUS_CHUNK].T  # (q, n)
            s, i = torch.topk(scores, min(k, scores.shape[1]), dim=1)  # (q, k')
            cand_scores = torch.cat([best_scores, s], dim=1)  # (q, k_prev + k')
            cand_idx = torch.cat([best_idx, i + ds], dim=1)  # (q, k_prev + k')
            best_scores, pos = torch.topk(cand_scores, min(k, cand_scores.shape[1]), dim=1)  # (q, k)
            best_idx = torch.gather(cand_idx, 1, pos)  # (q, k)
        out.append(best_idx)
    return torch.cat(out, dim=0)  # (Q, k)


class RetrievalEvaluator(Evaluator):
    """nDCG@k / Recall@k / MRR@k of dense cosine retrieval on a BEIR folder.

    The folder is read lazily on the first call and cached; file presence is checked
    at construction so that configuration mistakes fail early. Queries are embedded
    with ``kind="query"`` and documents with ``kind="document"``; embeddings are
    L2-normalised, so the dot product is the cosine similarity.

    For every ``k`` in ``k_values`` the metrics ``"{name}/ndcg@k"``, ``"{name}/recall@k"``
    and ``"{name}/mrr@k"`` are returned; with the default ``(10, 100)`` that includes
    the headline numbers ``ndcg@10``, ``recall@100`` and ``mrr@10``.

    Args:
        path: BEIR folder with ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: Qrels split name.
        name: Metric prefix; defaults to the folder's basename.
        query_instruction: Passed as ``instruction`` when encoding queries (``None`` =
            encoder default, ``""`` = none).
        doc_instruction: Same, for documents.
        max_queries: Evaluate only the first ``max_queries`` evaluable queries.
        max_corpus: Corpus budget: all documents judged for the kept queries plus the
            first other documents (file order) up to ``max_corpus`` in total. Judged
            documents are never dropped, so the corpus can exceed the budget.
        batch_size: Encoding batch size.
        k_values: Cut-offs for all three metrics.

    Raises:
        FileNotFoundError: If a required file is missing.
        ValueError: On invalid arguments.
    """

    def __init__(
        self,
        path: str,
        split: str = "test",
        name: str | None = None,
        query_instruction: str | None = None,
        doc_instruction: str | None = None,
        max_queries: int | None = None,
        max_corpus: int | None = None,
        batch_size: int = 64,
        k_values: Sequence[int] = (10, 100),
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        self.split = split
        self.name = name or os.path.basename(self.path.rstrip(os.sep))
        self.query_instruction = query_instruction
        self.doc_instruction = doc_instruction
        self.max_queries = max_queries
        self.max_corpus = max_corpus
        self.batch_size = batch_size
        self.k_values = tuple(sorted({int(k) for k in k_values}))
        if not self.k_values or self.k_values[0] <= 0:
            raise ValueError(f"k_values must be positive integers, got {k_values!r}")
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"BEIR folder not found: {self.path}")
        for rel in ("corpus.jsonl", "queries.jsonl", os.path.join("qrels", f"{split}.tsv")):
            if not os.path.isfile(os.path.join(self.path, rel)):
                raise FileNotFoundError(f"BEIR file not found: {os.path.join(self.path, rel)}")
        self._data: RetrievalData | None = None

    @property
    def data(self) -> RetrievalData:
        """The loaded task (read from disk on first access)."""
        if self._data is None:
            self._data = load_beir(self.path, self.split, self.max_queries, self.max_corpus)
            logger.info(
                "Loaded %s: %d queries, %d documents",
                self.name,
                len(self._data.query_ids),
                len(self._data.doc_ids),
            )
        return self._data

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """Encode queries and corpus, retrieve, and score.

        Args:
            encoder: The model to evaluate.

        Returns:
            ``{"{name}/ndcg@k": ..., "{name}/recall@k": ..., "{name}/mrr@k": ...}``.
        """
        data = self.data
        q = encoder.encode(
            data.query_texts, kind="query", instruction=self.query_instruction, batch_size=self.batch_size
        )  # (Q, D)
        d = encoder.encode(
            data.doc_texts, kind="document", instruction=self.doc_instruction, batch_size=self.batch_size
        )  # (N, D)
        q = F.normalize(q.detach().float().cpu(), dim=-1)  # (Q, D)
        d = F.normalize(d.detach().float().cpu(), dim=-1)  # (N, D)
        top = _top_k(q, d, max(self.k_values))  # (Q, k)
        rankings = {
            qid: [data.doc_ids[i] for i in row] for qid, row in zip(data.query_ids, top.tolist(), strict=True)
        }
        metrics = compute_retrieval_metrics(data.qrels, rankings, self.k_values)
        return {f"{self.name}/{key}": value for key, value in metrics.items()}
