"""Negative sampling on hand-set scores: window, positives, guards, re-scorer."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from embedlight.engine.mining.negatives import FalseNegativeGuard, select_negatives

# corpus ids 0..9; id 0 is the positive, id 5 duplicates the positive's text under another id
TEXTS = ["pos", "a", "b", "c", "d", "pos", "e", "q", "f", "g"]
IDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # ranked list (best first)
SCORES = [0.90, 0.85, 0.77, 0.76, 0.60, 0.59, 0.50, 0.40, 0.30, 0.20]


def _pick(k=10, start=0, end=10, guard=None, **kw):
    stats = Counter()
    picked = select_negatives(
        "q", IDS, SCORES, TEXTS, {0}, {"pos"}, 0.8, k, random.Random(0), start, end, guard, stats=stats, **kw
    )
    return picked, stats


def test_positive_excluded_by_id_and_text_and_query_excluded():
    picked, stats = _pick()
    ids = {p.id for p in picked}
    assert ids == {1, 2, 3, 4, 6, 8, 9}  # not 0 (positive id), 5 (positive text), 7 (the query)
    assert stats["positive"] == 2 and stats["query"] == 1


def test_relative_margin_drops_exactly_the_scores_above_margin_times_positive():
    # 0.95 * 0.8 = 0.76: 0.85 and 0.77 are dropped, 0.76 (not above) is kept
    picked, stats = _pick(guard=FalseNegativeGuard(relative_margin=0.95))
    assert {p.id for p in picked} == {3, 4, 6, 8, 9}
    assert stats["margin"] == 2


def test_max_score_drops_above_ceiling():
    picked, stats = _pick(guard=FalseNegativeGuard(max_score=0.5))
    assert {p.id for p in picked} == {6, 8, 9}  # 0.5 kept (not above), 0.85/0.77/0.76/0.6 dropped
    assert stats["max_score"] == 4


def test_rank_window_is_respected_and_k_is_sampled_reproducibly():
    picked, _ = _pick(k=2, start=2, end=7)
    assert len(picked) == 2
    assert all(2 <= p.rank < 7 for p in picked)
    assert {p.id for p in picked} <= {2, 3, 4, 6}
    assert [p.rank for p in picked] == sorted(p.rank for p in picked)
    again, _ = _pick(k=2, start=2, end=7)
    assert [p.id for p in again] == [p.id for p in picked]
    draws = {
        tuple(
            p.id
            for p in select_negatives("q", IDS, SCORES, TEXTS, {0}, {"pos"}, 0.8, 2, random.Random(s), 2, 7)
        )
        for s in range(20)
    }
    assert len(draws) > 1  # a sample, not always the top of the window


def test_rescorer_guard_drops_and_refills():
    ce = {"a": 0.1, "b": 0.99, "c": 0.2, "d": 0.97, "e": 0.3, "f": 0.1, "g": 0.1}
    calls = []

    def scorer(pairs):
        calls.append(len(pairs))
        return [ce[d] for _, d in pairs]

    picked, stats = _pick(
        k=10, rescorer=scorer, rescore_guard=FalseNegativeGuard(max_score=0.9), rescore_pos=1.0
    )
    assert {TEXTS[p.id] for p in picked} == {"a", "c", "e", "f", "g"}
    assert stats["rescore_max_score"] == 2
    assert all(p.rescore is not None for p in picked)


def test_guard_reason_order():
    g = FalseNegativeGuard(relative_margin=0.5, max_score=0.7)
    assert g.reason(0.8, 1.0) == "max_score"
    assert g.reason(0.6, 1.0) == "margin"
    assert g.reason(0.5, 1.0) is None


@pytest.mark.parametrize("bad", [(5, 5), (-1, 3)])
def test_bad_window(bad):
    from embedlight.engine.mining.miner import MineSettings

    with pytest.raises(ValueError, match="range_start"):
        MineSettings(range_start=bad[0], range_end=bad[1])
