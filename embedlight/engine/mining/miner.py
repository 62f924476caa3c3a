"""Hard-negative mining for FlagEmbedding-schema rows: encode, index, search, sample, score."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embedlight.engine.corpus import unique
from embedlight.engine.encode import encode_prefixed
from embedlight.engine.mining.negatives import FalseNegativeGuard, Rescorer, select_negatives
from embedlight.engine.mining.search import build_index, search
from embedlight.engine.mining.store import encode_to_memmap
from embedlight.models.load import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class MineSettings:
    """What to sample (FlagEmbedding's defaults: 15 negatives from ranks 2-200).

    Attributes:
        negatives: Negatives per row (``negative_number``).
        range_start: First rank of the sampling window (0-based, inclusive).
        range_end: End of the window (exclusive); also how many neighbours are retrieved.
        guard: False-negative guard on the mining model's scores.
        seed: Row ``i`` samples with ``random.Random(f"{seed}-{i}")``.
        rescore_guard: Guard on the re-scorer's scores (when a re-scorer is given).
    """

    negatives: int = 15
    range_start: int = 2
    range_end: int = 200
    guard: FalseNegativeGuard = field(default_factory=lambda: FalseNegativeGuard(0.95, None))
    seed: int = 42
    rescore_guard: FalseNegativeGuard = field(default_factory=FalseNegativeGuard)

    def __post_init__(self) -> None:
        if not 0 <= self.range_start < self.range_end:
            raise ValueError(f"need 0 <= range_start < range_end, got {self.range_start}, {self.range_end}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be >= 1, got {self.negatives}")


def encode_corpus(
    model: LoadedModel,
    corpus: Sequence[str],
    *,
    doc_prefix: str | None = None,
    store_path: str | None = None,
    store_dtype: str = "float32",
    chunk_size: int = 8192,
    batch_size: int = 64,
    show_progress: bool = True,
) -> np.ndarray:
    """Corpus embeddings (N, D): in RAM, or in a resumable memmap at ``store_path``."""
    prefix = model.prompts.get("document", "") if doc_prefix is None else doc_prefix
    if store_path:
        return encode_to_memmap(
            model.encoder,
            corpus,
            store_path,
            prefix=prefix,
            dtype=store_dtype,
            chunk_size=chunk_size,
            batch_size=batch_size,
            key=model.name,
            show_progress=show_progress,
        )
    return encode_prefixed(
        model.encoder, corpus, [prefix] * len(corpus), "document", batch_size, show_progress
    )


def mine_negatives(
    rows: Sequence[Mapping[str, Any]],
    corpus: Sequence[str],
    corpus_emb: np.ndarray,
    query_emb: np.ndarray,
    pos_emb: Mapping[str, np.ndarray],
    settings: MineSettings,
    *,
    index: Any = None,
    index_cfg: Mapping[str, Any] | None = None,
    rescorer: Rescorer | None = None,
) -> tuple[list[dict[str, Any]], Counter]:
    """Replace each row's ``neg`` with mined negatives; add ``pos_scores``, ``neg_scores``, ``neg_ranks``.

    Args:
        rows: Input rows (``query``, ``pos``; other fields are kept).
        corpus: Unique corpus texts; ``corpus_emb[i]`` embeds ``corpus[i]``.
        corpus_emb: (N, D) corpus embeddings (array or memmap).
        query_emb: (Q, D) query embeddings, one per row, as the model sees queries in training.
        pos_emb: Positive text -> (D,) embedding, for every positive of ``rows``.
        settings: Window, count, guards, seed.
        index: A prebuilt faiss index over ``corpus_emb`` (else one is built with ``index_cfg``).
        index_cfg: :func:`~embedlight.engine.mining.search.build_index` options.
        rescorer: Optional ``pairs -> scores`` (cross-encoder) with ``settings.rescore_guard``.

    Returns:
        ``(rows, stats)``: the mined rows (same order) and counts of what was dropped and why.
    """
    if len(query_emb) != len(rows):
        raise ValueError(f"{len(query_emb)} query embeddings for {len(rows)} rows")
    if index is None:
        index = build_index(corpus_emb, **dict(index_cfg or {}))
    scores, ids = search(index, query_emb, settings.range_end)  # (Q, K) each
    text_id = {t: i for i, t in enumerate(corpus)}
    stats: Counter = Counter()
    out = []
    for i, row in enumerate(rows):
        q = query_emb[i]  # (D,)
        pos_scores = [float(np.dot(q, pos_emb[p])) for p in row["pos"]]
        pos_ids = {text_id[p] for p in row["pos"] if p in text_id}
        rescore_pos = None
        if rescorer is not None:
            rescore_pos = max(rescorer([(row["query"], p) for p in row["pos"]]))
        picked = select_negatives(
            row["query"],
            ids[i],
            scores[i],
            corpus,
            pos_ids,
            set(row["pos"]),
            max(pos_scores),
            settings.negatives,
            random.Random(f"{settings.seed}-{i}"),
            settings.range_start,
            settings.range_end,
            settings.guard,
            rescorer,
            settings.rescore_guard,
            rescore_pos,
            stats,
        )
        new = {
            **row,
            "neg": [corpus[p.id] for p in picked],
            "pos_scores": pos_scores,
            "neg_scores": [p.score for p in picked],
            "neg_ranks": [p.rank for p in picked],
        }
        if rescorer is not None:
            new["pos_rescores"] = [float(s) for s in rescorer([(row["query"], p) for p in row["pos"]])]
            new["neg_rescores"] = [p.rescore for p in picked]
        stats["rows"] += 1
        stats["negatives"] += len(picked)
        out.append(new)
    return out, stats


def positive_embeddings(
    model: LoadedModel,
    rows: Sequence[Mapping[str, Any]],
    corpus: Sequence[str],
    corpus_emb: np.ndarray,
    doc_prefix: str | None = None,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """Embeddings of every positive: looked up in the corpus, encoded when the corpus lacks them."""
    text_id = {t: i for i, t in enumerate(corpus)}
    positives = unique(p for r in rows for p in r["pos"])
    out = {p: np.asarray(corpus_emb[text_id[p]], dtype=np.float32) for p in positives if p in text_id}
    missing = [p for p in positives if p not in text_id]
    if missing:
        prefix = model.prompts.get("document", "") if doc_prefix is None else doc_prefix
        emb = encode_prefixed(model.encoder, missing, [prefix] * len(missing), "document", batch_size)
        out.update(zip(missing, emb))
    return out
