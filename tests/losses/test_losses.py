"""Every registered loss: finiteness and gradients; hand-computed values for each mode."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from embedlight.losses.fields import batch_fields
from embedlight.registry import registered


def _emb(n, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1).requires_grad_()


@pytest.mark.parametrize("name", sorted(registered("loss")))
def test_finite_and_gradient(name):
    if name in ("distill_kl", "infonce_distill"):
        pytest.skip("needs (B, G) teacher scores with G > 1: see tests/losses/test_distill.py")
    loss_fn = registered("loss")[name]()
    q, d = _emb(4), _emb(4, seed=1)
    labels = torch.tensor([0.0, 1.0, 2.5, 5.0])
    fields = batch_fields(loss_fn)
    loss = loss_fn(q, d, **({"labels": labels} if "labels" in fields else {}))  # as the module passes them
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert d.grad is not None and d.grad.abs().sum() > 0


# two queries, group size 2 (positive, hard negative); unit-free scores chosen by hand
Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
D = torch.tensor([[1.0, 0.0], [0.0, 0.5], [0.0, 1.0], [0.5, 0.0]])  # q0: d0+, d1- ; q1: d2+, d3-


def _lse(*xs):
    return math.log(sum(math.exp(x) for x in xs))


def test_infonce_in_batch_known_value():
    loss = registered("loss")["infonce"](temperature=1.0)(Q, D)
    # q0 scores vs [d0..d3] = [1, 0, 0, 0.5], target 0; q1 = [0, 0.5, 1, 0], target 2
    expected = ((_lse(1, 0, 0, 0.5) - 1) + (_lse(0, 0.5, 1, 0) - 1)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_infonce_temperature_scales_scores():
    loss = registered("loss")["infonce"](temperature=0.5)(Q, D)
    expected = ((_lse(2, 0, 0, 1) - 2) + (_lse(0, 1, 2, 0) - 2)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_infonce_without_in_batch_negatives():
    fn = registered("loss")["infonce"](temperature=1.0, in_batch_negatives=False)
    expected = ((_lse(1, 0) - 1) + (_lse(1, 0) - 1)) / 2  # own group only: q0 [d0, d1], q1 [d2, d3]
    assert fn(Q, D).item() == pytest.approx(expected, abs=1e-6)
    # a batch can switch it off too
    on = registered("loss")["infonce"](temperature=1.0)
    assert on(Q, D, in_batch_negatives=False).item() == pytest.approx(expected, abs=1e-6)


def test_infonce_bidirectional_gtr():
    fn = registered("loss")["infonce"](temperature=1.0, bidirectional=True)
    forward = ((_lse(1, 0, 0, 0.5) - 1) + (_lse(0, 0.5, 1, 0) - 1)) / 2
    # positives d0=[1,0], d2=[0,1] against queries: d0 -> [1, 0] target 0; d2 -> [0, 1] target 1
    backward = ((_lse(1, 0) - 1) + (_lse(0, 1) - 1)) / 2
    assert fn(Q, D).item() == pytest.approx((forward + backward) / 2, abs=1e-6)


def _reference_infonce(q, d, group, t, extended=False, bidirectional=False, self_dq=False, hard_dd=False):
    """Per-row loops over the papers' formulas, in float64, sharing no code with the loss.

    Row i has documents ``d[i*group:(i+1)*group]``, positive first; every document in the batch is a
    candidate for every query. GTE's improved contrastive loss (Li et al., 2023, "Towards General Text
    Embeddings with Multi-stage Contrastive Learning") divides ``e^{s(q_i, d_i+)}`` by

        Z_i = sum_j e^{s(q_i, d_j)} + sum_{j != i} e^{s(q_i, q_j)} + sum_{j != i} e^{s(q_j, d_i+)}
              + sum_{j != i} e^{s(d_j+, d_i+)}

    as ``InfoNCELoss(extended=True)`` documents it (scores over the temperature). ``self_dq`` adds the
    ``j = i`` term to the third sum (the positive pair a second time) and ``hard_dd`` adds the other
    rows' hard negatives to the fourth, which is how sentence-transformers 6.2 reads the paper. GTR
    (Ni et al., 2021) averages the loss with the document-to-query one (each positive picks its query).
    """
    q, d = q.double(), d.double()
    n = q.size(0)
    pos = [d[i * group] for i in range(n)]
    total = 0.0
    for i in range(n):
        num = math.exp(float(q[i] @ pos[i]) / t)
        z = sum(math.exp(float(q[i] @ d[j]) / t) for j in range(d.size(0)))
        if extended:
            z += math.exp(float(q[i] @ pos[i]) / t) if self_dq else 0.0
            for j in range(n):
                if j != i:
                    z += math.exp(float(q[i] @ q[j]) / t)
                    z += math.exp(float(q[j] @ pos[i]) / t)
                    others = d[j * group : (j + 1) * group] if hard_dd else [pos[j]]
                    z += sum(math.exp(float(o @ pos[i]) / t) for o in others)
        total += -math.log(num / z)
    loss = total / n
    if bidirectional:
        back = 0.0
        for i in range(n):
            num = math.exp(float(pos[i] @ q[i]) / t)
            z = sum(math.exp(float(pos[i] @ q[j]) / t) for j in range(n))
            back += -math.log(num / z)
        loss = (loss + back / n) / 2
    return loss


@pytest.mark.parametrize("group", [1, 3], ids=["no-hard-negatives", "2-hard-negatives"])
@pytest.mark.parametrize(
    ("extended", "bidirectional"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_infonce_variants_match_per_row_reference(group, extended, bidirectional):
    """Random embeddings (every similarity differs), so a wrong pairing or a missing term shows."""
    n, t = 5, 0.1
    q, d = _emb(n, d=8, seed=3), _emb(n * group, d=8, seed=4)
    fn = registered("loss")["infonce"](temperature=t, extended=extended, bidirectional=bidirectional)
    expected = _reference_infonce(q.detach(), d.detach(), group, t, extended, bidirectional)
    assert fn(q, d).item() == pytest.approx(expected, rel=1e-5)


def test_infonce_reference_tells_the_variants_apart():
    """The checks above can fail: each variant's value differs from the others on these inputs."""
    q, d = _emb(5, d=8, seed=3), _emb(15, d=8, seed=4)
    values = [_reference_infonce(q.detach(), d.detach(), 3, 0.1, e, b) for e in (0, 1) for b in (0, 1)]
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1 :]) > 1e-3
    swapped = torch.cat([d[3:6], d[0:3], d[6:]])  # q0 and q1 trade their document groups
    assert abs(_reference_infonce(q.detach(), swapped.detach(), 3, 0.1, True) - values[2]) > 1e-3


def test_cosent_known_value():
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    d = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # cos = 1, 0, 1/sqrt2
    labels = torch.tensor([5.0, 0.0, 3.0])
    s = 20.0
    c = [1.0, 0.0, 1 / math.sqrt(2)]
    # pairs with label_i > label_j: (0,1), (0,2), (2,1): terms s*(cos_j - cos_i)
    terms = [s * (c[1] - c[0]), s * (c[2] - c[0]), s * (c[1] - c[2])]
    expected = _lse(0.0, *terms)
    assert registered("loss")["cosent"]()(q, d, labels=labels).item() == pytest.approx(expected, rel=1e-5)


def test_cosent_needs_labels():
    with pytest.raises(ValueError, match="labels"):
        registered("loss")["cosent"]()(Q, Q)


def test_infonce_rejects_ragged_groups():
    with pytest.raises(ValueError, match="multiple"):
        registered("loss")["infonce"]()(Q, D[:3])


@pytest.mark.parametrize("group", [1, 3], ids=["no-hard-negatives", "2-hard-negatives"])
@pytest.mark.parametrize("variant", ["infonce", "gtr", "gte"])
def test_reference_agrees_with_sentence_transformers(group, variant):
    """An independent implementation checks the reference itself: sentence-transformers 6.2's
    ``MultipleNegativesRankingLoss`` (``directions``/``partition_mode``). Plain InfoNCE and GTR agree
    with embedlight's loss; for GTE sentence-transformers also counts the positive pair in the
    document-to-query sum and the other rows' hard negatives in the document-document sum, so it
    matches the reference only with ``self_dq`` and ``hard_dd`` (a difference embedlight's loss makes,
    reported in issue 10)."""
    from sentence_transformers.sentence_transformer.losses.multiple_negatives_ranking import (
        MultipleNegativesRankingLoss,
    )

    directions = {
        "infonce": ("query_to_doc",),
        "gtr": ("query_to_doc", "doc_to_query"),
        "gte": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
    }[variant]
    st = MultipleNegativesRankingLoss(
        model=None,
        scale=10.0,
        similarity_fct=lambda a, b: a @ b.T,
        directions=directions,
        partition_mode="per_direction" if variant == "gtr" else "joint",
    )
    n, t = 5, 0.1
    q, d = _emb(n, d=8, seed=3).detach(), _emb(n * group, d=8, seed=4).detach()
    columns = [d[k::group] for k in range(group)]  # sentence-transformers: (positives, negatives_1, ...)
    theirs = st.compute_loss_from_embeddings([q, *columns], None).item()
    gte = variant == "gte"
    reference = _reference_infonce(q, d, group, t, gte, variant == "gtr", self_dq=gte, hard_dd=gte)
    assert theirs == pytest.approx(reference, rel=1e-5)
