"""Vectorised masking for masked auto-encoding (RetroMAE), built on the batch's device.

Everything here is a handful of tensor ops over the whole batch (no per-row or per-token Python
loop), so it runs on the GPU next to the model; ``experiments/retromae/time_masking.py`` times it
against a training step.

References:
    Xiao et al., 2022, "RetroMAE: Pre-Training Retrieval-oriented Language Models Via Masked
    Auto-Encoder" (EMNLP 2022).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # label value that cross-entropy skips


def special_token_table(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> torch.Tensor:
    """Boolean lookup table, (V,), True for the tokenizer's special ids ([CLS], [SEP], [PAD], ...)."""
    table = torch.zeros(vocab_size, dtype=torch.bool)  # (V,)
    ids = [i for i in tokenizer.all_special_ids if i is not None and 0 <= i < vocab_size]
    table[torch.tensor(ids, dtype=torch.long)] = True
    return table


def word_continuation_table(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> torch.Tensor:
    """Boolean lookup table, (V,), True for sub-word pieces that continue the previous word.

    WordPiece marks continuations with a ``##`` prefix; SentencePiece (``▁``) and byte-level BPE
    (``Ġ``) mark word *starts* instead. Built once from the vocabulary (not per batch).
    """
    vocab = tokenizer.get_vocab()
    table = torch.zeros(vocab_size, dtype=torch.bool)  # (V,)
    tokens = [t for t in vocab if 0 <= vocab[t] < vocab_size]
    if any(t.startswith("##") for t in tokens):
        cont = [vocab[t] for t in tokens if t.startswith("##")]
    else:
        marker = (
            "▁"
            if any(t.startswith("▁") for t in tokens)
            else "Ġ"
            if any(t.startswith("Ġ") for t in tokens)
            else None
        )
        if marker is None:
            return table  # no sub-word marker: every token is its own word
        special = set(tokenizer.all_special_tokens)
        cont = [vocab[t] for t in tokens if not t.startswith(marker) and t not in special]
    if cont:
        table[torch.tensor(cont, dtype=torch.long)] = True
    return table


def _select_ratio(scores: torch.Tensor, eligible: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per row, pick ``round(ratio * n_eligible)`` (at least 1) eligible slots with the lowest scores.

    Args:
        scores: Uniform random scores, (B, N).
        eligible: Slots that may be picked, (B, N) bool.
        ratio: Fraction of eligible slots to pick.

    Returns:
        (B, N) bool selection.
    """
    n = eligible.sum(dim=1)  # (B,)
    k = torch.round(n.to(torch.float32) * ratio).long().clamp(max=n)  # (B,)
    k = torch.where((n > 0) & (ratio > 0), k.clamp(min=1), k)  # (B,) at least one if any eligible
    scores = scores.masked_fill(~eligible, float("inf"))  # (B, N)
    rank = scores.argsort(dim=1).argsort(dim=1)  # (B, N) rank of each slot within its row
    return (rank < k.unsqueeze(1)) & eligible  # (B, N)


def sample_mlm_mask(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    ratio: float,
    special_table: torch.Tensor,
    continuation_table: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Choose the positions to mask: ``ratio`` of each row's maskable tokens (exactly, rounded).

    Special tokens and padding are never masked. With ``continuation_table`` (whole-word masking)
    the ratio applies to words and every piece of a chosen word is masked.

    Args:
        input_ids: Token ids, (B, L).
        attention_mask: 1 for real tokens, (B, L).
        ratio: Fraction of maskable tokens (or words) to mask, in [0, 1].
        special_table: (V,) bool, from :func:`special_token_table`, on the batch's device.
        continuation_table: (V,) bool, from :func:`word_continuation_table`, or None for token masking.
        generator: Optional RNG on the batch's device.

    Returns:
        (B, L) bool mask, True = masked.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    maskable = attention_mask.bool() & ~special_table[input_ids]  # (B, L)
    scores = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)  # (B, L)
    if continuation_table is None:
        return _select_ratio(scores, maskable, ratio)  # (B, L)
    # whole words: a word starts at every maskable non-continuation piece, and at a maskable piece right
    # after a special token or padding (a continuation there has no word to continue)
    after_unmaskable = torch.ones_like(maskable)  # (B, L)
    after_unmaskable[:, 1:] = ~maskable[:, :-1]
    starts = maskable & (~continuation_table[input_ids] | after_unmaskable)  # (B, L)
    word_id = torch.cumsum(starts.long(), dim=1) - 1  # (B, L) index of the word each token belongs to
    word_eligible = _words_present(word_id, starts)  # (B, L) word slots that exist in each row
    chosen_words = _select_ratio(scores, word_eligible, ratio)  # (B, L) over word slots
    return chosen_words.gather(1, word_id.clamp(min=0)) & maskable  # (B, L)


def _words_present(word_id: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """(B, L) bool over word slots: True for every word id that has a start token in its row."""
    present = torch.zeros(starts.shape, dtype=torch.long, device=starts.device)  # (B, L)
    present.scatter_add_(1, word_id.clamp(min=0), starts.long())  # (B, L) number of starts per word id
    return present > 0  # (B, L)


def apply_mlm_mask(
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    replace_prob: float = 0.8,
    random_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT corruption of the chosen positions: 80% [MASK], 10% a random token, 10% unchanged.

    Args:
        input_ids: Token ids, (B, L).
        mask: Positions to corrupt and predict, (B, L) bool.
        mask_token_id: The tokenizer's [MASK] id.
        vocab_size: Size of the embedding table (random replacements are drawn below it).
        replace_prob: Share of chosen positions set to [MASK].
        random_prob: Share of chosen positions set to a random token.
        generator: Optional RNG on the batch's device.

    Returns:
        ``(corrupted_ids, labels)``: both (B, L); labels are the original ids at chosen positions and
        :data:`IGNORE_INDEX` elsewhere.
    """
    labels = input_ids.masked_fill(~mask, IGNORE_INDEX)  # (B, L)
    u = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)  # (B, L)
    to_mask = mask & (u < replace_prob)  # (B, L)
    to_random = mask & (u >= replace_prob) & (u < replace_prob + random_prob)  # (B, L)
    random_ids = torch.randint(
        vocab_size, input_ids.shape, device=input_ids.device, generator=generator
    )  # (B, L)
    corrupted = input_ids.masked_fill(to_mask, mask_token_id)  # (B, L)
    corrupted = torch.where(to_random, random_ids, corrupted)  # (B, L)
    return corrupted, labels


def enhanced_decoding_mask(
    attention_mask: torch.Tensor,
    hide_ratio: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Position-specific attention mask of RetroMAE's enhanced decoding, sampled per row.

    Slot 0 of the content stream holds the sentence embedding. Query position ``i`` attends to slot 0
    always, never to itself, and to each other real token independently with probability
    ``1 - hide_ratio``. Slot 0's own row (no loss there) and padding rows see slot 0 only, so every
    row of the softmax has at least one visible key.

    Args:
        attention_mask: 1 for real tokens, (B, L); right padding, slot 0 = the sentence embedding.
        hide_ratio: Probability that a given other token is hidden from a position.
        generator: Optional RNG on the batch's device.

    Returns:
        (B, L, L) bool, True = query position (dim 1) may attend to key slot (dim 2).
    """
    if not 0.0 <= hide_ratio <= 1.0:
        raise ValueError(f"hide_ratio must be in [0, 1], got {hide_ratio}")
    batch, length = attention_mask.shape
    device = attention_mask.device
    real = attention_mask.bool()  # (B, L)
    keep = torch.rand((batch, length, length), device=device, generator=generator) >= hide_ratio  # (B, L, L)
    visible = keep & real.unsqueeze(1) & real.unsqueeze(2)  # (B, L, L) real query, real key
    eye = torch.eye(length, dtype=torch.bool, device=device)  # (L, L)
    visible = visible & ~eye  # (B, L, L) never itself
    visible[:, 0, :] = False  # slot 0's row: the sentence embedding itself, not predicted
    visible[:, :, 0] = True  # (B, L) every position sees the sentence embedding
    return visible  # (B, L, L)
