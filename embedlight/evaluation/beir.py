"""BEIR-format folders: the one reader of a retrieval benchmark on disk.

A BEIR folder looks like::

    <path>/corpus.jsonl       {"_id": ..., "title": ..., "text": ...}   one per line
    <path>/queries.jsonl      {"_id": ..., "text": ...}                  one per line
    <path>/qrels/<split>.tsv  query-id <TAB> corpus-id <TAB> score       optional header line

Used by :class:`~embedlight.evaluation.retrieval.RetrievalEvaluator`, the BEIR mode of
:class:`~embedlight.evaluation.reranking.RerankingEvaluator` and the MTEB bridge's local tasks. Only
queries with a relevant judgment (score > 0) that appear in ``queries.jsonl`` are kept.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from embedlight.utils.io import iter_records

logger = logging.getLogger(__name__)

__all__ = ["RetrievalData", "load_beir", "read_qrels"]


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
