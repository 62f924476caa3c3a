"""Throughput/MFU accounting and the matmul peak benchmark."""

from __future__ import annotations

import json
import types

import pytest
import torch

from embedlight.backbones.hf_decoder import HFDecoder
from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.callbacks.throughput import (
    TokenTally,
    TokenThroughput,
    batch_lengths,
    resolve_flop_model,
)
from embedlight.models.embedder import Embedder
from embedlight.modules.retromae import RetroMAEModule
from embedlight.poolers.cls import CLSPooler
from embedlight.training.run import run
from embedlight.utils.flops import TransformerFlops, row_sums
from embedlight.utils.matmul_peak import peak_cache_path
from tests.helpers import compose_cfg, tiny_overrides

# the tiny models of embedlight.testing: hidden 32, 2 layers, 2 heads, MLP width 64; Llama: 1 KV head
H, LAYERS, FF = 32, 2, 64
BERT_BLOCKS = LAYERS * (4 * H * H + 2 * H * FF)  # q, k, v, o + up, down
LLAMA_BLOCKS = LAYERS * (2 * H * H + 2 * H * 16 + 3 * H * FF)  # q, o + k, v (1 head of 16) + gate, up, down


def test_minilm_shape_flops_by_hand(tiny_bert):
    """all-MiniLM-L6-v2's shape (random init): 6 FLOPs per block weight and token + attention."""
    shape = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536}
    bb = HFEncoder(tiny_bert, random_init=True, config_overrides=shape)
    n = 6 * (4 * 384 * 384 + 2 * 384 * 1536)
    assert bb.flop_model() == TransformerFlops(frozen=0, trainable=n, layers=6, attention_width=384)
    tokens, squared = row_sums(torch.tensor([10, 128]))
    expected = 6 * n * 138 + 12 * 6 * 384 * (10**2 + 128**2)
    assert bb.flop_model().train_flops(tokens, squared) == expected


def test_lora_counts_four_flops_per_frozen_weight(tiny_llama):
    """LoRA: frozen base weights cost forward + input gradient (4N), adapters 6 per entry."""
    lora = HFDecoder(tiny_llama, lora_r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    adapters = LAYERS * ((4 * H + H * 4) + (4 * H + 16 * 4))  # q: A (4, 32) + B (32, 4); v: B (16, 4)
    assert lora.flop_model() == TransformerFlops(LLAMA_BLOCKS, adapters, LAYERS, H)
    assert lora.flop_model().per_token == 4 * LLAMA_BLOCKS + 6 * adapters
    full = HFDecoder(tiny_llama, lora=False)
    assert full.flop_model() == TransformerFlops(0, LLAMA_BLOCKS, LAYERS, H)
    assert lora.flop_model().per_token < 0.75 * full.flop_model().per_token  # about 4N, not 6N


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_flop_model_matches_torch_flop_counter(tiny_llama, lora):
    """torch's FlopCounterMode counts the matmuls autograd really runs (eager attention, no padding,
    gradients reaching the embeddings as they do above the first layer)."""
    from torch.utils.flop_counter import FlopCounterMode

    bb = HFDecoder(
        tiny_llama, lora=lora, lora_r=4, lora_alpha=8, lora_dropout=0.0, attn_implementation="eager"
    )
    ids = torch.randint(3, 50, (2, 7))  # (B, T)
    embeds = bb.base_model.get_input_embeddings()(ids).detach().requires_grad_()  # (B, T, H)
    with FlopCounterMode(display=False) as counter:
        hidden = bb.model(inputs_embeds=embeds, attention_mask=torch.ones_like(ids), use_cache=False)
        hidden.last_hidden_state.sum().backward()
    assert bb.flop_model().train_flops(2 * 7, 2 * 7 * 7) == counter.get_total_flops()


def test_retromae_counts_decoder_and_mlm_heads(tiny_bert):
    module = RetroMAEModule(
        Embedder(HFEncoder(tiny_bert), CLSPooler()), mode="enhanced", encoder_mask_ratio=0.3
    )
    vocab = module.vocab_size
    head = H * H + vocab * H  # dense + tied vocabulary projection
    decoder = 4 * H * H + 2 * H * FF  # one layer shaped like the encoder's
    tokens, squared = 100.0, 1200.0
    expected = (
        6 * BERT_BLOCKS * tokens
        + 12 * LAYERS * H * squared  # encoder
        + 6 * head * 0.3 * tokens  # MLM head on the masked encoder tokens
        + 6 * decoder * tokens
        + 12 * 1 * H * squared  # decoder layer
        + 6 * head * 1.0 * tokens  # enhanced decoding predicts every token
    )
    assert module.flop_model().train_flops(tokens, squared) == pytest.approx(expected, rel=1e-12)
    assert resolve_flop_model(module) is not None
    assert (
        resolve_flop_model(module).train_flops(tokens, squared)
        > module.backbone.flop_model().train_flops(tokens, squared) * 1.5
    )  # the decoder and heads are not free
    basic = RetroMAEModule(Embedder(HFEncoder(tiny_bert), CLSPooler()), mode="basic", decoder_mask_ratio=0.5)
    assert basic.flop_model().train_flops(tokens, squared) == pytest.approx(
        expected - 6 * head * 0.5 * tokens, rel=1e-12
    )


def test_contrastive_module_reports_its_backbone(tiny_bert, tmp_path):
    from embedlight.training.run import build

    module, _ = build(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path))))
    assert resolve_flop_model(module) == TransformerFlops(0, BERT_BLOCKS, LAYERS, H)


def test_batch_lengths_finds_every_mask():
    batch = {
        "query": {"attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])},
        "docs": {"attention_mask": torch.ones(2, 4, dtype=torch.long)},
        "in_batch_negatives": True,
    }
    assert [t.tolist() for t in batch_lengths(batch)] == [[2, 1], [4, 4]]


def test_a_typed_batch_is_counted_like_its_dict():
    from embedlight.callbacks.throughput import batch_samples
    from embedlight.data.batch import Batch, ICLCounts

    query = {"input_ids": torch.zeros(2, 3), "attention_mask": torch.tensor([[1, 1, 0], [1, 0, 0]])}
    docs = {"input_ids": torch.zeros(2, 4), "attention_mask": torch.ones(2, 4, dtype=torch.long)}
    batch = Batch(query, docs, query_hash=torch.tensor([1, 2]), icl=ICLCounts(kept=1))
    assert [t.tolist() for t in batch_lengths(batch)] == [[2, 1], [4, 4]]
    assert batch_samples(batch, "query") == 2 and batch_samples({"query": query, "docs": docs}, "query") == 2
    assert batch_samples({"input_ids": torch.zeros(5, 2)}, "query") == 5  # pretraining: the batch itself


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
    assert tally.read() == row_sums(torch.tensor([2, 1, 4]))


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
    # MFU is the summary's FLOP/s over the peak; the FLOPs are the backbone's hand-checked model
    assert data["tflops"] == pytest.approx(data["mfu"] * peak, rel=1e-9)
    header = open(next((tmp_path / "out" / "logs").rglob("metrics.csv"))).readline()
    assert "throughput/mfu" in header


def test_peak_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from embedlight.utils.matmul_peak import run

    result = run({"size": 64, "seconds": 0.01, "trials": 1, "device": "cpu", "save": True})
    assert result["tflops"]["fp32"] > 0 and result["tflops"]["bf16"] > 0
    assert json.loads(open(peak_cache_path()).read())["tflops"] == result["tflops"]
    trainer = types.SimpleNamespace(precision="bf16-mixed")
    assert TokenThroughput()._resolve_peak(trainer) == pytest.approx(result["tflops"]["bf16"] * 1e12)
