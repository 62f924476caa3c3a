"""Vectorised RetroMAE masks: ratios, special tokens, whole words and the enhanced-decoding mask."""

from __future__ import annotations

import torch

from embedlight.modules.masking import (
    IGNORE_INDEX,
    apply_mlm_mask,
    enhanced_decoding_mask,
    sample_mlm_mask,
)

VOCAB = 50
SPECIAL = (0, 1, 2)  # pad, cls, sep


def _batch(
    batch: int = 64, length: int = 40, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded rows [CLS] w w ... [SEP] [PAD]... of random lengths, plus the special-token table."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, length + 1, (batch,), generator=g)  # (B,)
    pos = torch.arange(length).unsqueeze(0)  # (1, L)
    attention = (pos < lengths.unsqueeze(1)).long()  # (B, L)
    ids = torch.randint(len(SPECIAL), VOCAB, (batch, length), generator=g)  # (B, L)
    ids[:, 0] = 1
    ids[torch.arange(batch), lengths - 1] = 2
    ids[attention == 0] = 0
    table = torch.zeros(VOCAB, dtype=torch.bool)
    table[list(SPECIAL)] = True
    return ids, attention, table


def test_mlm_mask_hits_the_ratio_and_skips_special_tokens():
    ids, attention, table = _batch()
    maskable = attention.bool() & ~table[ids]
    for ratio in (0.15, 0.3, 0.5):
        mask = sample_mlm_mask(ids, attention, ratio, table)
        assert not (mask & ~maskable).any(), "special tokens or padding were masked"
        n = maskable.sum(1)
        expected = torch.round(n.float() * ratio).long().clamp(min=1)
        assert torch.equal(mask.sum(1), expected)  # per row, exactly (rounded)
        assert abs(mask.sum().item() / maskable.sum().item() - ratio) < 0.03  # on average


def test_mlm_mask_is_random_across_calls():
    ids, attention, table = _batch()
    a = sample_mlm_mask(ids, attention, 0.3, table)
    b = sample_mlm_mask(ids, attention, 0.3, table)
    assert not torch.equal(a, b)


def test_whole_word_mask_masks_words_entirely():
    ids, attention, table = _batch(batch=128, seed=1)
    cont = torch.zeros(VOCAB, dtype=torch.bool)
    cont[30:] = True  # ids >= 30 continue the previous word
    mask = sample_mlm_mask(ids, attention, 0.3, table, cont)
    maskable = attention.bool() & ~table[ids]
    assert not (mask & ~maskable).any()
    # a continuation piece is masked iff the token before it (same word) is masked
    is_cont = cont[ids][:, 1:] & maskable[:, 1:] & maskable[:, :-1]  # (B, L-1)
    assert torch.equal(mask[:, 1:][is_cont], mask[:, :-1][is_cont])
    starts = maskable & ~cont[ids]
    starts[:, 1:] |= maskable[:, 1:] & ~maskable[:, :-1]  # orphan pieces right after [CLS] start a word
    word_ratio = (mask & starts).sum().item() / starts.sum().item()
    assert abs(word_ratio - 0.3) < 0.03


def test_apply_mlm_mask_80_10_10():
    ids, attention, table = _batch(batch=256, length=64)
    mask = sample_mlm_mask(ids, attention, 0.5, table)
    corrupted, labels = apply_mlm_mask(ids, mask, mask_token_id=3, vocab_size=VOCAB)
    assert torch.equal(labels[mask], ids[mask])
    assert (labels[~mask] == IGNORE_INDEX).all()
    assert torch.equal(corrupted[~mask], ids[~mask])
    n = mask.sum().item()
    share_mask = (corrupted[mask] == 3).sum().item() / n
    share_same = (corrupted[mask] == ids[mask]).sum().item() / n
    assert abs(share_mask - 0.8) < 0.03
    assert 0.08 < share_same < 0.15  # 10% kept + random draws that hit the same id


def test_enhanced_mask_never_self_always_sentence_embedding():
    ids, attention, _ = _batch(batch=32, length=48)
    visible = enhanced_decoding_mask(attention, 0.5)
    b, length, _ = visible.shape
    assert visible.shape == (32, 48, 48) and visible.dtype == torch.bool
    assert visible[:, :, 0].all(), "every position must see the sentence embedding (slot 0)"
    diag = visible[:, torch.arange(1, length), torch.arange(1, length)]  # (B, L-1)
    assert not diag.any(), "a position saw itself"
    real = attention.bool()
    keys_pad = ~real.unsqueeze(1).expand(-1, length, -1).clone()
    keys_pad[:, :, 0] = False
    assert not (visible & keys_pad).any(), "padding was visible"
    assert visible.any(dim=-1).all(), "a row with no visible key would give NaN attention"


def test_enhanced_mask_hides_the_ratio_on_average_and_differs_per_row():
    ids, attention, _ = _batch(batch=64, length=48, seed=2)
    for ratio in (0.3, 0.5, 0.7):
        visible = enhanced_decoding_mask(attention, ratio)
        real = attention.bool()
        # other real context tokens (not slot 0, not self) of real query positions >= 1
        cand = real.unsqueeze(1) & real.unsqueeze(2)
        cand[:, :, 0] = False
        cand[:, 0, :] = False
        cand &= ~torch.eye(48, dtype=torch.bool)
        seen = (visible & cand).sum().item() / cand.sum().item()
        assert abs(seen - (1 - ratio)) < 0.02
    visible = enhanced_decoding_mask(attention, 0.5)
    assert not torch.equal(visible[:, 1], visible[:, 2])  # position-specific
    assert not torch.equal(visible[0], visible[1, :, :])  # sampled per row
