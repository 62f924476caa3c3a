"""Sample hard negatives from a rank window, with false-negative control.

The recipe follows FlagEmbedding's ``hn_mine`` (C-Pack, Xiao et al., 2023): retrieve the top documents
for each query and sample ``k`` negatives at random from ranks ``[range_start, range_end)`` (their
default: 15 from 2-200). A positive is never a negative, by corpus id and by exact text, and neither
is the query itself. Two guards drop likely false negatives before sampling, as in Arctic-Embed
(Merrick et al., 2024, "Arctic-Embed: Scalable, Efficient, and Accurate Text Embedding Models"):

* relative margin: drop a candidate scoring above ``relative_margin`` times the positive's score
  (Arctic-Embed uses 0.95);
* absolute ceiling: drop a candidate scoring above ``max_score``.

An optional re-scorer (e.g. a cross-encoder) applies the same two guards on its own scores.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Rescorer = Callable[[list[tuple[str, str]]], Sequence[float]]


@dataclass
class FalseNegativeGuard:
    """Drops candidates that score too close to (or above) the positive.

    Attributes:
        relative_margin: Drop when ``score > relative_margin * pos_score`` (None: off).
        max_score: Drop when ``score > max_score`` (None: off).
    """

    relative_margin: float | None = None
    max_score: float | None = None

    def reason(self, score: float, pos_score: float) -> str | None:
        """Why a candidate with ``score`` is dropped against ``pos_score`` (None: kept)."""
        if self.max_score is not None and score > self.max_score:
            return "max_score"
        if self.relative_margin is not None and score > self.relative_margin * pos_score:
            return "margin"
        return None


@dataclass
class Picked:
    """A sampled negative: corpus id, retrieval score, rank (0-based position in the result list)."""

    id: int
    score: float
    rank: int
    rescore: float | None = None


def select_negatives(
    query: str,
    cand_ids: Sequence[int],
    cand_scores: Sequence[float],
    texts: Sequence[str],
    pos_ids: set[int],
    pos_texts: set[str],
    pos_score: float,
    k: int,
    rng: random.Random,
    range_start: int = 2,
    range_end: int = 200,
    guard: FalseNegativeGuard | None = None,
    rescorer: Rescorer | None = None,
    rescore_guard: FalseNegativeGuard | None = None,
    rescore_pos: float | None = None,
    stats: Counter | None = None,
) -> list[Picked]:
    """Sample up to ``k`` negatives for one query from ranks ``[range_start, range_end)``.

    Args:
        query: The query text (never its own negative).
        cand_ids: Retrieved corpus ids, best first (-1 = no result).
        cand_scores: Their scores.
        texts: Corpus texts by id.
        pos_ids: Corpus ids of the positives.
        pos_texts: Positive texts (exact-text exclusion, for positives missing from the corpus or
            duplicated under another id).
        pos_score: The positive's score (max over positives) for the relative margin.
        k: Negatives wanted.
        rng: Per-row RNG (sampling order).
        range_start: First rank of the window (0-based, inclusive).
        range_end: End of the window (exclusive).
        guard: False-negative guard on the retrieval scores.
        rescorer: Optional ``pairs -> scores`` (cross-encoder); candidates are rescored in the random
            sampling order, ``k`` at a time, until ``k`` pass ``rescore_guard``.
        rescore_guard: Guard on the re-scorer's scores.
        rescore_pos: The re-scorer's score of the positive.
        stats: Counter of drop reasons, updated in place.

    Returns:
        The picked negatives, in rank order (fewer than ``k`` when the window runs dry).
    """
    stats = stats if stats is not None else Counter()
    survivors: list[Picked] = []
    for rank in range(range_start, min(range_end, len(cand_ids))):
        cid = int(cand_ids[rank])
        if cid < 0:
            break
        text = texts[cid]
        if cid in pos_ids or text in pos_texts:
            stats["positive"] += 1
            continue
        if text == query:
            stats["query"] += 1
            continue
        why = guard.reason(float(cand_scores[rank]), pos_score) if guard else None
        if why:
            stats[why] += 1
            continue
        survivors.append(Picked(cid, float(cand_scores[rank]), rank))
    order = rng.sample(survivors, len(survivors))
    if rescorer is None:
        picked = order[:k]
    else:
        picked = []
        rguard = rescore_guard or FalseNegativeGuard()
        rpos = rescore_pos if rescore_pos is not None else float("inf")
        start = 0
        while len(picked) < k and start < len(order):
            block = order[start : start + k]
            start += k
            scores = rescorer([(query, texts[p.id]) for p in block])
            for p, s in zip(block, scores):
                p.rescore = float(s)
                why = rguard.reason(p.rescore, rpos)
                if why:
                    stats[f"rescore_{why}"] += 1
                elif len(picked) < k:
                    picked.append(p)
    if len(picked) < k:
        stats["short_rows"] += 1
    return sorted(picked, key=lambda p: p.rank)


class CrossEncoderScorer:
    """A ``sentence_transformers.CrossEncoder`` as a re-scorer: ``pairs -> scores``.

    Args:
        model: Local folder, bundled name or hub id of a cross-encoder.
        batch_size: Pairs per forward pass.
        device: ``cpu``/``cuda``/None (auto).
        max_length: Token limit per pair.
    """

    def __init__(
        self, model: str, batch_size: int = 32, device: str | None = None, max_length: int | None = 512
    ) -> None:
        from sentence_transformers import CrossEncoder

        from embedlight.backbones.resolve import resolve_pretrained

        self.model = CrossEncoder(resolve_pretrained(model), device=device, max_length=max_length)
        self.batch_size = batch_size

    def __call__(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]
