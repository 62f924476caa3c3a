"""``embedlight-filter`` (:func:`embedlight.engine.filtering.run`): threshold (C-Pack) and consistency (E5) filtering on hand-made embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedlight.engine.filtering import run as run_filter
from tests.engine.fakes import fake_model
from tests.engine.test_mine import _cfg


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)


def test_threshold_and_consistency_drop_the_right_rows(tmp_path):
    # query at angle 0; score = cos(angle of the doc)
    table = {"q0": _unit(0), "q1": _unit(0), "q2": _unit(0), "q3": _unit(0)}
    docs = {"p0": 0.1, "p1": 1.2, "p2": 0.6, "p3a": 1.5, "p3b": 0.05, "x1": 0.3, "x2": 0.4, "x3": 0.5}
    table.update({k: _unit(a) for k, a in docs.items()})
    rows = [
        {"query": "q0", "pos": ["p0"]},  # score .995, only p3b (.999) above: rank 1 -> kept
        {"query": "q1", "pos": ["p1"]},  # score .362 < .43 -> threshold
        {
            "query": "q2",
            "pos": ["p2"],
        },  # score .825: x1 .955, x2 .921, x3 .878 above it -> rank 3 -> consistency
        {"query": "q3", "pos": ["p3a", "p3b"]},  # p3a .07 -> removed, p3b .999 kept
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs))
    out = tmp_path / "out.jsonl"
    cfg = _cfg(
        "filter",
        [
            "model=fake",
            f"input={path}",
            f"output={out}",
            f"corpus={corpus}",
            "threshold=0.43",
            "top_k=2",
            "show_progress=false",
        ],
    )
    summary = run_filter(cfg, model=fake_model(table))
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    dropped = [json.loads(line) for line in (tmp_path / "out.jsonl.dropped.jsonl").read_text().splitlines()]
    assert [r["query"] for r in kept] == ["q0", "q3"]
    assert kept[0]["pos_ranks"] == [1]
    assert kept[1]["pos"] == ["p3b"] and kept[1]["pos_ranks"] == [0]
    assert {r["query"]: r["reason"] for r in dropped} == {"q1": "threshold", "q2": "consistency"}
    q2 = next(r for r in dropped if r["query"] == "q2")
    assert q2["pos_ranks"] == [2]  # capped at top_k: "2 or worse"
    np.testing.assert_allclose(q2["pos_scores"], [np.cos(0.6)], rtol=1e-5)
    assert summary["counts"] == {"kept": 2, "threshold": 1, "consistency": 1, "positives_removed": 1}
    with pytest.raises(FileExistsError):
        run_filter(cfg, model=fake_model(table))


def test_filter_needs_a_criterion(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"query": "q0", "pos": ["p0"]}) + "\n")
    table = {"q0": _unit(0), "p0": _unit(0.1)}
    cfg = _cfg(
        "filter", ["model=fake", f"input={path}", f"output={tmp_path / 'o.jsonl'}", "show_progress=false"]
    )
    with pytest.raises(ValueError, match="threshold and/or top_k"):
        run_filter(cfg, model=fake_model(table))
