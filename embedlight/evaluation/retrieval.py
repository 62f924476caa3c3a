"""Dense retrieval evaluation on BEIR-format folders (read by :mod:`embedlight.evaluation.beir`).

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

import torch
import torch.nn.functional as F

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.beir import RetrievalData, load_beir
from embedlight.registry import register

logger = logging.getLogger(__name__)

__all__ = ["RetrievalEvaluator", "compute_retrieval_metrics"]

# Rows of the (queries x corpus) similarity matrix materialised at once.
_QUERY_CHUNK = 256
_CORPUS_CHUNK = 65536


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


@register("evaluator", "retrieval")
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
