"""`benchmarks/bench_vs_st.py --quick`: both trainers run end to end and the table is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_quick_side_by_side(tmp_path):
    data = os.path.join(REPO, "data")
    if not os.path.exists(os.path.join(data, "bbc", "train.jsonl")):
        data = str(tmp_path / "data")  # the script builds bbc/ there
    out = tmp_path / "bench.json"
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "bench_vs_st.py"), "--quick"]
    cmd += ["--data-dir", data, "--out", str(out), "--el", "grouped=+data.group_by_length=true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pairs/s" in proc.stdout
    result = json.loads(out.read_text())
    rows = {r["name"]: r for r in result["summary"]}
    assert set(rows) == {"st", "el", "grouped"}
    for row in rows.values():
        assert row["pairs_per_sec"] > 0 and row["tokens_per_sec"] > 0 and row["peak_rss_mb"] > 0
        assert 0 < row["ndcg@10"] <= 1 and row["encode_texts_per_sec"] > 0
    assert rows["el"]["pairs_per_sec_ratio"] > 0 and rows["st"]["pairs_per_sec_ratio"] == 1.0
