"""Filtering noisy training pairs with a reference model.

* Threshold filtering (C-Pack, Xiao et al., 2023, "C-Pack: Packaged Resources To Advance General
  Chinese Embedding"): score each (query, positive) with a reference model and drop those below a
  threshold (0.43 in the paper's setting, with its model's cosine scale).
* Consistency filtering (E5, Wang et al., 2022, "Text Embeddings by Weakly-Supervised Contrastive
  Pre-training"): rank each positive against a pool of candidates and keep it only when it is in the
  top-k (E5: k=2 among 1M random passages): the model's prediction agrees with the label.

A row keeps the positives that pass; it is dropped, with the reason, when none does.

:func:`filter_rows` is the filter on given embeddings; :func:`run` is ``embedlight-filter`` as a library
call (load, encode, filter, write the kept and dropped rows and the summary).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embedlight.engine.corpus import read_triplets, write_jsonl
from embedlight.engine.mining.miner import positive_embeddings
from embedlight.engine.mining.search import build_index, search
from embedlight.engine.steps import (
    configured_corpus,
    configured_model,
    corpus_embeddings,
    encode_queries,
    stats_path,
)
from embedlight.models.load import LoadedModel
from embedlight.utils.outputs import guard_output, plain, write_summary


def positive_rank(
    pos_score: float,
    cand_ids: Sequence[int],
    cand_scores: Sequence[float],
    corpus: Sequence[str],
    positives: set[str],
) -> int:
    """Rank (0 = best) of a positive: how many non-positive candidates score strictly above it.

    Exact below the number of non-positive candidates retrieved; the caller retrieves top-k + |pos| and
    caps the rank at k ("k or worse").
    """
    return sum(
        1
        for cid, s in zip(cand_ids, cand_scores)
        if cid >= 0 and corpus[int(cid)] not in positives and float(s) > pos_score
    )


def filter_rows(
    rows: Sequence[Mapping[str, Any]],
    query_emb: np.ndarray,
    pos_emb: Mapping[str, np.ndarray],
    *,
    threshold: float | None = None,
    top_k: int | None = None,
    corpus: Sequence[str] = (),
    corpus_emb: np.ndarray | None = None,
    index: Any = None,
    index_cfg: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Counter]:
    """Apply threshold and/or consistency filtering.

    Args:
        rows: FlagEmbedding rows (``query``, ``pos``, ...).
        query_emb: (Q, D) query embeddings, one per row.
        pos_emb: Positive text -> (D,) embedding.
        threshold: Drop a positive scoring below this (None: off).
        top_k: Drop a positive ranked below the top-k among ``corpus`` (None: off).
        corpus: Candidate texts for consistency filtering.
        corpus_emb: (N, D) their embeddings.
        index: Prebuilt faiss index over ``corpus_emb`` (else built with ``index_cfg``).
        index_cfg: Options of :func:`~embedlight.engine.mining.search.build_index`.

    Returns:
        ``(kept, dropped, counts)``: kept rows (their failing positives removed, ``pos_scores`` and,
        with ``top_k``, ``pos_ranks`` added; a rank of ``top_k`` means "top_k or worse"); dropped rows
        with ``reason``, ``pos_scores`` and ``pos_ranks``; counts by reason.
    """
    if threshold is None and top_k is None:
        raise ValueError("nothing to filter on: set threshold and/or top_k")
    scores = ids = None
    if top_k is not None:
        if corpus_emb is None or not len(corpus):
            raise ValueError("consistency filtering (top_k) needs a candidate corpus")
        if index is None:
            index = build_index(corpus_emb, **dict(index_cfg or {}))
        most_pos = max(len(r["pos"]) for r in rows)
        scores, ids = search(index, query_emb, top_k + most_pos)  # (Q, K) each
    kept, dropped, counts = [], [], Counter()
    for i, row in enumerate(rows):
        pos_scores = [float(np.dot(query_emb[i], pos_emb[p])) for p in row["pos"]]
        ranks = (
            [min(top_k, positive_rank(s, ids[i], scores[i], corpus, set(row["pos"]))) for s in pos_scores]
            if top_k is not None
            else None
        )
        reasons = []
        for j, s in enumerate(pos_scores):
            if threshold is not None and s < threshold:
                reasons.append("threshold")
            elif ranks is not None and ranks[j] >= top_k:
                reasons.append("consistency")
            else:
                reasons.append(None)
        detail = {"pos_scores": pos_scores, **({"pos_ranks": ranks} if ranks is not None else {})}
        keep = [j for j, r in enumerate(reasons) if r is None]
        if not keep:
            reason = reasons[0]
            counts[reason] += 1
            dropped.append({**row, **detail, "reason": reason})
            continue
        if len(keep) < len(reasons):
            counts["positives_removed"] += len(reasons) - len(keep)
        new = {
            **row,
            "pos": [row["pos"][j] for j in keep],
            "pos_scores": [pos_scores[j] for j in keep],
        }
        if ranks is not None:
            new["pos_ranks"] = [ranks[j] for j in keep]
        kept.append(new)
        counts["kept"] += 1
    return kept, dropped, counts


def run(cfg: Mapping[str, Any], model: LoadedModel | None = None) -> dict[str, Any]:
    """Filter ``cfg.input`` into ``cfg.output``, the dropped rows (with their ``reason``) into
    ``<output>.dropped.jsonl``; returns the summary (also written to ``<output>.stats.json``).

    Args:
        cfg: A composed ``filter`` config (``model``, ``input``, ``output``, ``threshold``, ``top_k``, ...).
        model: A loaded model to use instead of ``cfg.model`` (tests inject fakes).
    """
    dropped_path = cfg.get("dropped_output") or f"{cfg['output']}.dropped.jsonl"
    for path in (cfg["output"], dropped_path, stats_path(cfg)):
        guard_output(path, bool(cfg.get("overwrite", False)))
    rows = read_triplets(cfg["input"])
    model = configured_model(cfg, model)
    corpus, corpus_emb = [], None
    if cfg.get("top_k") is not None:
        corpus = configured_corpus(cfg, rows)
        corpus_emb = corpus_embeddings(cfg, model, corpus)
    query_emb = encode_queries(cfg, model, rows)
    pos_emb = positive_embeddings(
        model, rows, corpus, corpus_emb, cfg.get("doc_instruction"), int(cfg["batch_size"])
    )
    kept, dropped, counts = filter_rows(
        rows,
        query_emb,
        pos_emb,
        threshold=cfg.get("threshold"),
        top_k=cfg.get("top_k"),
        corpus=corpus,
        corpus_emb=corpus_emb,
        index_cfg=plain(cfg.get("index") or {}),
    )
    write_jsonl(cfg["output"], kept)
    write_jsonl(dropped_path, dropped)
    summary = {
        "input": cfg["input"],
        "model": model.name,
        "n_rows": len(rows),
        "kept": len(kept),
        "dropped": len(dropped),
        "counts": dict(counts),
        "settings": plain(cfg),
    }
    why = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != "kept") or "none"
    return write_summary(
        stats_path(cfg),
        summary,
        [f"kept {len(kept)} of {len(rows)} rows -> {cfg['output']}", f"dropped: {why} -> {dropped_path}"],
    )
