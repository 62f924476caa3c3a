"""Throughput/MFU accounting and the matmul peak benchmark."""

from __future__ import annotations

import json
import types

import pytest
import torch

from embedlight.callbacks.throughput import (
    ThroughputMonitor,
    TokenTally,
    batch_lengths,
    flops_from_sums,
    non_embedding_params,
    peak_cache_path,
    train_flops,
)
from embedlight.train import run
from tests.helpers import compose_cfg, tiny_overrides


def _cfg(**kw):
    base = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    return types.SimpleNamespace(**{**base, **kw})


def test_minilm_non_embedding_params_and_flops():
    cfg = _cfg(hidden_act="gelu", model_type="bert")
    n = 6 * (4 * 384 * 384 + 2 * 384 * 1536)  # q, k, v, o + up, down
    assert non_embedding_params(cfg) == n
    lengths = torch.tensor([10, 128])
    expected = 6 * n * 138 + 12 * 6 * 384 * (10**2 + 128**2)
    assert train_flops(cfg, lengths) == pytest.approx(expected)


def test_gated_mlp_and_grouped_query_attention():
    cfg = _cfg(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        hidden_act="silu",
        model_type="llama",
    )
    attn = 64 * 64 * 2 + 64 * 32 * 2
    assert non_embedding_params(cfg) == 2 * (attn + 3 * 64 * 128)


def test_batch_lengths_finds_every_mask():
    batch = {
        "query": {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])},
        "docs": {"attention_mask": torch.ones(2, 4, dtype=torch.long)},
        "in_batch_negatives": True,
    }
    assert [t.tolist() for t in batch_lengths(batch)] == [[2, 1], [4, 4]]


def test_token_tally_sums_lengths_squares_and_slots():
    tally = TokenTally()
    tally.add({"query": {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])}}, samples=2)
    tally.add({"docs": {"attention_mask": torch.ones(1, 4, dtype=torch.long)}}, samples=1)
    assert tally.read() == (2 + 1 + 4, 4 + 1 + 16)
    assert (tally.samples, tally.slots, tally.steps) == (3, 6 + 4, 2)
    run = TokenTally()
    run.absorb(tally)
    run.absorb(TokenTally())  # an empty window adds nothing
    assert run.read() == tally.read() and (run.samples, run.slots, run.steps) == (3, 10, 2)
    cfg = _cfg()
    lengths = torch.tensor([2, 1, 4])
    assert flops_from_sums(cfg, *tally.read()) == pytest.approx(train_flops(cfg, lengths))


@pytest.mark.parametrize(("hardware", "peak"), [("cpu", 0.5), ("cpu_bf16", 1.0)])
def test_fit_logs_mfu_and_writes_a_summary(tiny_bert, tmp_path, hardware, peak):
    """MFU is taken against the peak of the precision the run trains in, on either kind of CPU."""
    summary = tmp_path / "throughput.json"
    extra = [
        f"hardware={hardware}",
        "callbacks.evaluation=null",
        "callbacks.throughput.window=2",
        "+callbacks.throughput.peak_tflops={fp32: 0.5, bf16: 1.0}",
        f"+callbacks.throughput.summary_path={summary}",
        "+data.group_by_length=true",
    ]
    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=4, extra=extra)))
    data = json.loads(summary.read_text())
    assert data["steps_timed"] == 3 and data["samples_per_sec"] > 0 and data["tokens_per_sec"] > 0
    assert 0 < data["mfu"] < 1 and data["peak_tflops"] == peak
    header = open(next((tmp_path / "out" / "logs").rglob("metrics.csv"))).readline()
    assert "throughput/mfu" in header


def test_peak_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from embedlight.bench_matmul import main

    result = main(["--size", "64", "--seconds", "0.01", "--trials", "1", "--device", "cpu", "--save"])
    assert result["tflops"]["fp32"] > 0 and result["tflops"]["bf16"] > 0
    assert json.loads(open(peak_cache_path()).read())["tflops"] == result["tflops"]
    trainer = types.SimpleNamespace(precision="bf16-mixed")
    assert ThroughputMonitor()._resolve_peak(trainer) == pytest.approx(result["tflops"]["bf16"] * 1e12)
