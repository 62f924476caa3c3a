"""``mlm_head_state`` reads a masked-LM head from a checkpoint folder under the MLM head's own names."""

from __future__ import annotations

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM

from embedlight.backbones.loading import MLM_HEAD_FILE, mlm_head_state


def test_bert_masked_lm_head_is_read_and_renamed(tmp_path):
    torch.manual_seed(0)
    model = BertForMaskedLM(
        BertConfig(
            vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    )
    with torch.no_grad():
        model.cls.predictions.bias.normal_()  # not all zeros, so the comparison means something
    model.save_pretrained(str(tmp_path), safe_serialization=True)
    state = mlm_head_state(str(tmp_path))
    head = model.cls.predictions
    want = {
        "dense.weight": head.transform.dense.weight,
        "dense.bias": head.transform.dense.bias,
        "norm.weight": head.transform.LayerNorm.weight,
        "norm.bias": head.transform.LayerNorm.bias,
        "bias": head.bias,
    }
    assert set(state) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(state[key], value.detach(), rtol=0, atol=0)


def test_the_retromae_head_file_wins_and_a_plain_encoder_has_none(tmp_path, tiny_bert):
    assert mlm_head_state(tiny_bert) == {}  # a BertModel checkpoint: no MLM head
    own = {"dense.weight": torch.ones(2, 2), "bias": torch.zeros(3)}
    save_file(own, str(tmp_path / MLM_HEAD_FILE))
    got = mlm_head_state(str(tmp_path))
    assert set(got) == set(own) and torch.equal(got["dense.weight"], own["dense.weight"])
