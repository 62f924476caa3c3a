"""Instruction masks, [EOS] appending and padding sides of the shared tokeniser."""

from __future__ import annotations

from transformers import AutoTokenizer

from embedlight.data.tokenize import tokenize


def test_instruction_mask_covers_cls_and_instruction(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    out = tokenize(tok, ["the cat is big", "dog"], ["represent the sentence: ", ""], 32)
    ids = out["input_ids"][0].tolist()
    n_instr = len(tok("represent the sentence:")["input_ids"]) - 1  # [CLS] + instruction tokens
    assert out["instruction_mask"][0].tolist() == [1] * n_instr + [0] * (len(ids) - n_instr)
    assert out["instruction_mask"][1].sum() == 0  # no instruction, nothing excluded
    assert out["attention_mask"][1].tolist()[:3] == [1, 1, 1] and out["attention_mask"][1].sum() == 3


def test_left_padding_and_eos(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.pad_token = tok.unk_token
    tok.padding_side = "left"
    out = tokenize(tok, ["the cat is big", "dog"], ["find: ", "find: "], 32, append_eos=True)
    assert (out["input_ids"][:, -1] == tok.eos_token_id).all()
    assert out["attention_mask"][1, 0] == 0 and out["attention_mask"][1, -1] == 1
    assert out["instruction_mask"][1].tolist()[-5:] == [1, 1, 1, 0, 0]  # <s> find : | dog </s>


def test_truncation_keeps_eos(tiny_llama):
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    tok.pad_token = tok.unk_token
    out = tokenize(tok, ["the cat " * 20], None, 8, append_eos=True)
    assert out["input_ids"].shape == (1, 8) and out["input_ids"][0, -1] == tok.eos_token_id
