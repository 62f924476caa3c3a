"""Every registered loss: finiteness and gradients; hand-computed values for each mode."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

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
    loss = loss_fn(q, d, labels=labels)
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


def test_infonce_extended_gte():
    fn = registered("loss")["infonce"](temperature=1.0, extended=True)
    # extra terms for q0: q0.q1 = 0 ; q1.d0+ = 0 ; d2+.d0+ = 0 ; for q1: q1.q0 = 0 ; q0.d2+ = 0 ; d0+.d2+ = 0
    expected = ((_lse(1, 0, 0, 0.5, 0, 0, 0) - 1) + (_lse(0, 0.5, 1, 0, 0, 0, 0) - 1)) / 2
    assert fn(Q, D).item() == pytest.approx(expected, abs=1e-6)


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
