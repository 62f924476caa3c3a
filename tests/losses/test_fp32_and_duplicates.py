"""Similarity logits in fp32 under autocast, and duplicate texts kept out of the negatives."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from embedlight.data.collator import text_hash, text_hashes
from embedlight.losses.cosent import CoSENTLoss
from embedlight.losses.infonce import InfoNCELoss


def _emb(n: int, d: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)  # (n, D)


def test_infonce_logits_are_fp32_under_bf16_autocast():
    q, d = _emb(8, seed=1), _emb(16, seed=2)  # B=8, G=2
    loss = InfoNCELoss(temperature=0.02)
    ref = (q.double() @ d.double().T / 0.02).float()  # (B, B*G) fp64 reference
    with torch.autocast("cpu", dtype=torch.bfloat16):
        naive = q @ d.T / 0.02  # what an unguarded loss computes
        out = loss.logits(q, d)
        value = loss(q, d)
    assert (naive.float() - ref).abs().max() > 0.01  # bf16 autocast really moves the logits
    assert out["scores"].dtype == torch.float32 and value.dtype == torch.float32
    torch.testing.assert_close(out["scores"], ref, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(value, F.cross_entropy(ref, torch.arange(8) * 2), atol=1e-5, rtol=1e-5)


def test_infonce_bf16_embeddings_are_scored_in_fp32():
    q, d = _emb(4, seed=3).bfloat16(), _emb(8, seed=4).bfloat16()  # a bf16 backbone's output
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = InfoNCELoss(temperature=0.02, extended=True).logits(q, d)["scores"]
    ref = q.double() @ d.double().T / 0.02  # (4, 8)
    torch.testing.assert_close(scores[:, :8], ref.float(), atol=1e-4, rtol=1e-5)


def test_cosent_logits_are_fp32_under_bf16_autocast():
    a, b = _emb(16, seed=5), _emb(16, seed=6)
    labels = torch.arange(16, dtype=torch.float)
    ref = F.cosine_similarity(a.double(), b.double(), dim=-1) * 20  # (16,)
    fp32_loss = CoSENTLoss()(a, b, labels=labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = CoSENTLoss().logits(a, b)
        loss = CoSENTLoss()(a, b, labels=labels)
    torch.testing.assert_close(got, ref.float(), atol=1e-4, rtol=1e-5)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, fp32_loss)


def _reference(q, d, group, qh, dh, t):
    """Per-query loops in float64: -log softmax of the positive over the columns left unmasked."""
    batch = q.size(0)
    total = 0.0
    for i in range(batch):
        logits = []
        for c in range(d.size(0)):
            j, g = divmod(c, group)
            is_target = c == i * group
            same_text = dh[c] == dh[i * group]
            dup_query_positive = g == 0 and qh[j] == qh[i]
            if is_target or not (same_text or dup_query_positive):
                logits.append((c, float(q[i].double() @ d[c].double()) / t))
        top = max(v for _, v in logits)
        lse = top + math.log(sum(math.exp(v - top) for _, v in logits))
        total += lse - dict(logits)[i * group]
    return total / batch


def test_duplicate_texts_are_not_negatives():
    # B=4, G=2. Row 2 repeats row 0 (same query, same positive); row 3's hard negative is row 1's
    # positive text; row 0's hard negative equals its own positive (a data error).
    queries = ["q0", "q1", "q0", "q3"]
    docs = ["p0", "p0", "p1", "n1", "p0", "n2", "p3", "p1"]
    qh, dh = text_hash(queries), text_hash(docs)
    q, d = _emb(4, seed=7), _emb(8, seed=8)
    loss = InfoNCELoss(temperature=0.05)
    got = loss(q, d, query_hash=qh, doc_hash=dh)
    want = _reference(q, d, 2, qh.tolist(), dh.tolist(), 0.05)
    assert got.item() == pytest.approx(want, rel=1e-5)
    plain = loss(q, d)  # without ids every duplicate counts as a negative: a different value
    assert abs(plain.item() - want) > 1e-3
    scores = loss.logits(q, d, query_hash=qh, doc_hash=dh)["scores"]
    assert torch.isinf(scores[0, [1, 4]]).all() and torch.isfinite(scores[0, [0, 2, 3, 5, 6, 7]]).all()
    assert torch.isinf(scores[1, 7]) and torch.isinf(scores[2, [0, 1]]).all()  # p1 twice; row 0 = row 2
    assert torch.isfinite(scores[3]).all()  # nothing in the batch shares row 3's texts
    assert torch.isfinite(scores[torch.arange(4), torch.arange(4) * 2]).all()  # positives stay


def test_duplicates_masked_without_in_batch_negatives():
    qh = text_hash(["a", "b"])
    dh = text_hash(["pa", "pa", "x", "pb", "y", "z"])  # row 0's first hard negative is its positive
    q, d = _emb(2, seed=9), _emb(6, seed=10)
    loss = InfoNCELoss(temperature=0.05, in_batch_negatives=False)
    got = loss(q, d, query_hash=qh, doc_hash=dh)
    s = (torch.einsum("bd,bgd->bg", q.double(), d.double().view(2, 3, -1)) / 0.05).tolist()
    row0 = -s[0][0] + math.log(math.exp(s[0][0]) + math.exp(s[0][2]))
    row1 = -s[1][0] + math.log(sum(math.exp(v) for v in s[1]))
    assert got.item() == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_collator_hashes_are_stable_and_equal_for_equal_text():
    rows = [{"query": "a b", "docs": ["x", "y"]}, {"query": "a b", "docs": ["y", "z"]}]
    ids = text_hashes(rows)
    assert ids["query_hash"].shape == (2,) and ids["doc_hash"].shape == (4,)
    assert ids["query_hash"][0] == ids["query_hash"][1]
    assert ids["doc_hash"][1] == ids["doc_hash"][2] and ids["doc_hash"][0] != ids["doc_hash"][3]
    # a fixed value: the same on every process and run (Python's str hash is salted per process)
    assert text_hash(["x"]).item() == int.from_bytes(
        __import__("hashlib").blake2b(b"x", digest_size=8).digest(), "little", signed=True
    )
