"""The hf_encoder backbone: name resolution, options, and saving."""

from __future__ import annotations

import pytest
import torch

from embedlight.backbones.hf_base import torch_dtype
from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.backbones.resolve import resolve_pretrained


def test_resolution(tiny_bert):
    assert resolve_pretrained(tiny_bert) == tiny_bert
    assert resolve_pretrained("BAAI/bge-base-en-v1.5") == "BAAI/bge-base-en-v1.5"  # hub ids pass through
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_pretrained("./missing/model")


def test_bundled_minilm_resolves_to_its_package_folder():
    import os

    path = resolve_pretrained("all-MiniLM-L6-v2")
    assert os.path.exists(os.path.join(path, "config.json"))


def test_forward_save_and_options(tiny_bert, tmp_path):
    enc = HFEncoder(tiny_bert, gradient_checkpointing=True)
    assert enc.hidden_size == 32 and enc.append_eos is False
    assert enc.model.is_gradient_checkpointing
    batch = enc.tokenizer(["the cat", "a big dog is red"], padding=True, return_tensors="pt")
    hidden = enc(batch["input_ids"], batch["attention_mask"])
    assert hidden.shape == (2, batch["input_ids"].shape[1], 32)
    hidden.sum().backward()
    assert enc.model.embeddings.word_embeddings.weight.grad is not None
    enc.save_pretrained(str(tmp_path / "saved"))
    again = HFEncoder(str(tmp_path / "saved")).eval()
    enc.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            again(batch["input_ids"], batch["attention_mask"]),
            enc(batch["input_ids"], batch["attention_mask"]),
        )


def test_random_init_with_overrides_and_dtype(tiny_bert):
    enc = HFEncoder(tiny_bert, random_init=True, config_overrides={"num_hidden_layers": 1}, dtype="bf16")
    assert enc.model.config.num_hidden_layers == 1
    assert next(enc.model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        torch_dtype("float8")


def test_trust_remote_code_is_off_by_default():
    import inspect

    assert inspect.signature(HFEncoder).parameters["trust_remote_code"].default is False
