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
    enc = tokenizer(
        full,
        truncation=True,
        max_length=max_length - int(append_eos),
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    rows_ids, rows_instr = [], []
    for ids, offsets, special, ins in zip(
        enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"], instructions
    ):
        n_ins = len(ins)
        first_text = len(ids)
        for j, ((start, end), sp) in enumerate(zip(offsets, special)):
            if not sp and end > start and end > n_ins:  # first token that reaches into the text
                first_text = j
                break
        if append_eos and (not ids or ids[-1] != eos_id):
            ids = [*ids, eos_id]
        rows_ids.append(ids)
        rows_instr.append(first_text if n_ins else 0)  # no instruction: nothing excluded
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
    batch = len(rows)
    input_ids = torch.full((batch, longest), pad_id, dtype=torch.long)  # (B, L)
    attention = torch.zeros((batch, longest), dtype=torch.long)  # (B, L)
    instr = torch.zeros((batch, longest), dtype=torch.long)  # (B, L)
    left = tokenizer.padding_side == "left"
    for i, (ids, n_ins) in enumerate(zip(rows, instruction_lengths)):
        start = longest - len(ids) if left else 0
        input_ids[i, start : start + len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[i, start : start + len(ids)] = 1
        instr[i, start : start + n_ins] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "instruction_mask": instr}
