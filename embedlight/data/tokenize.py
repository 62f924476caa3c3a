"""Tokenisation shared by training collators and inference: instruction + text, with an instruction mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase


def tokenize(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    instructions: Sequence[str] | None = None,
    max_length: int = 512,
    append_eos: bool = False,
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor]:
    """Tokenise ``instruction + text`` per row and pad to the longest row (dynamic padding).

    The instruction mask marks every token before the first token of the text proper (leading special
    tokens such as [CLS] and the instruction tokens), matching sentence-transformers' ``include_prompt
    = False``. Padding follows ``tokenizer.padding_side``.

    Args:
        tokenizer: A fast tokenizer (character offsets are needed for the instruction mask).
        texts: The texts.
        instructions: One prefix per text (``""`` for none), or None.
        max_length: Truncation length in tokens, [EOS] included.
        append_eos: Append the tokenizer's EOS id to every row (decoder embedders pool on it).
        pad_to_multiple_of: Round the padded length up (tensor-core friendly shapes on GPU).

    Returns:
        ``input_ids``, ``attention_mask`` and ``instruction_mask``, each (B, L) int64.
    """
    instructions = list(instructions) if instructions is not None else [""] * len(texts)
    if len(instructions) != len(texts):
        raise ValueError(f"{len(instructions)} instructions for {len(texts)} texts")
    full = [ins + txt for ins, txt in zip(instructions, texts)]
    eos_id = tokenizer.eos_token_id
    if append_eos and eos_id is None:
        raise ValueError("append_eos needs a tokenizer with an eos_token")
    masked = any(instructions)  # offsets are needed only to find where an instruction ends
    enc = tokenizer(
        full,
        truncation=True,
        max_length=max_length - int(append_eos),
        return_offsets_mapping=masked,
        return_special_tokens_mask=masked,
    )
    rows_ids = enc["input_ids"]
    rows_instr = [0] * len(rows_ids)  # no instruction: nothing excluded
    if masked:
        for i, (ids, offsets, special, ins) in enumerate(
            zip(rows_ids, enc["offset_mapping"], enc["special_tokens_mask"], instructions)
        ):
            if not ins:
                continue
            rows_instr[i] = len(ids)
            for j, ((start, end), sp) in enumerate(zip(offsets, special)):
                if not sp and end > start and end > len(ins):  # first token that reaches into the text
                    rows_instr[i] = j
                    break
    if append_eos:
        rows_ids = [ids if ids and ids[-1] == eos_id else [*ids, eos_id] for ids in rows_ids]
    return pad_rows(rows_ids, rows_instr, tokenizer, pad_to_multiple_of)


def pad_rows(
    rows: Sequence[Sequence[int]],
    instruction_lengths: Sequence[int],
    tokenizer: PreTrainedTokenizerBase,
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor]:
    """Pad token-id rows into tensors; ``instruction_lengths[i]`` leading tokens of row i are instruction."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    longest = max((len(r) for r in rows), default=1)
    if pad_to_multiple_of:
        longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    left = tokenizer.padding_side == "left"
    ids_out, att_out, ins_out = [], [], []  # padded Python lists, one tensor each at the end
    for ids, n_ins in zip(rows, instruction_lengths):
        pad = longest - len(ids)
        n = len(ids)
        if left:
            ids_out.append([pad_id] * pad + list(ids))
            att_out.append([0] * pad + [1] * n)
            ins_out.append([0] * pad + [1] * n_ins + [0] * (n - n_ins))
        else:
            ids_out.append(list(ids) + [pad_id] * pad)
            att_out.append([1] * n + [0] * pad)
            ins_out.append([1] * n_ins + [0] * (longest - n_ins))
    return {
        "input_ids": torch.tensor(ids_out, dtype=torch.long),  # (B, L)
        "attention_mask": torch.tensor(att_out, dtype=torch.long),  # (B, L)
        "instruction_mask": torch.tensor(ins_out, dtype=torch.long),  # (B, L)
    }
