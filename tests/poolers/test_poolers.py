"""Every registered pooler: shapes, finiteness, gradient flow, padding sides, instruction exclusion."""

from __future__ import annotations

import pytest
import torch

from embedlight.registry import registered

POOLERS = sorted(registered("pooler"))


def _hidden(batch=3, length=7, width=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, width, generator=g, requires_grad=True)


def _right_mask(lengths, length):
    return torch.tensor([[1] * n + [0] * (length - n) for n in lengths])


def _to_left(hidden, mask):
    """Move each row's real tokens to the end (left padding), keeping their order."""
    out_h, out_m = torch.zeros_like(hidden), torch.zeros_like(mask)
    for i in range(hidden.size(0)):
        n = int(mask[i].sum())
        out_h[i, hidden.size(1) - n :] = hidden[i, :n]
        out_m[i, hidden.size(1) - n :] = 1
    return out_h, out_m


@pytest.mark.parametrize("name", POOLERS)
@pytest.mark.parametrize("projection", [None, "linear", "mlp"])
def test_shape_finite_gradient(name, projection):
    pooler = registered("pooler")[name](projection=projection, projection_dim=5 if projection else None).bind(
        8
    )
    hidden = _hidden()
    mask = _right_mask([7, 4, 1], 7)
    out = pooler(hidden, mask)
    assert out.shape == (3, 5 if projection else 8)
    assert pooler.out_dim == out.shape[1]
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    assert torch.all(hidden.grad[1, 4:] == 0), "padding positions must get no gradient"
    if projection:
        assert all(p.grad is not None for p in pooler.head.parameters())


@pytest.mark.parametrize("name", POOLERS)
def test_left_and_right_padding_agree(name):
    pooler = registered("pooler")[name]().bind(8)
    hidden = _hidden().detach()
    mask = _right_mask([7, 4, 2], 7)
    left_h, left_m = _to_left(hidden, mask)
    torch.testing.assert_close(pooler(hidden, mask), pooler(left_h, left_m))


def test_known_values():
    hidden = torch.arange(12, dtype=torch.float).view(1, 4, 3)  # rows [0,1,2],[3,4,5],[6,7,8],[9,10,11]
    mask = torch.tensor([[1, 1, 1, 0]])
    p = registered("pooler")
    torch.testing.assert_close(p["cls"]().bind(3)(hidden, mask), torch.tensor([[0.0, 1, 2]]))
    torch.testing.assert_close(p["mean"]().bind(3)(hidden, mask), torch.tensor([[3.0, 4, 5]]))
    torch.testing.assert_close(p["last_token"]().bind(3)(hidden, mask), torch.tensor([[6.0, 7, 8]]))
    # weights 1,2,3: (1*[0,1,2] + 2*[3,4,5] + 3*[6,7,8]) / 6
    torch.testing.assert_close(p["weighted_mean"]().bind(3)(hidden, mask), torch.tensor([[4.0, 5, 6]]))


def test_last_token_picks_eos_under_both_paddings():
    pooler = registered("pooler")["last_token"]().bind(2)
    hidden = torch.tensor([[[1.0, 1], [2, 2], [9, 9], [0, 0]], [[0.0, 0], [3, 3], [4, 4], [8, 8]]])
    right = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])  # row 0 right-padded, row 1 left-padded
    torch.testing.assert_close(pooler(hidden, right), torch.tensor([[9.0, 9], [8, 8]]))


def test_instruction_exclusion_mean():
    hidden = torch.arange(12, dtype=torch.float).view(1, 4, 3)
    mask = torch.ones(1, 4, dtype=torch.long)
    instr = torch.tensor([[1, 1, 0, 0]])
    p = registered("pooler")["mean"]
    torch.testing.assert_close(
        p(exclude_instruction=True).bind(3)(hidden, mask, instr), torch.tensor([[7.5, 8.5, 9.5]])
    )
    torch.testing.assert_close(
        p(exclude_instruction=False).bind(3)(hidden, mask, instr), torch.tensor([[4.5, 5.5, 6.5]])
    )


def test_bad_projection_name():
    with pytest.raises(ValueError, match="projection"):
        registered("pooler")["mean"](projection="conv")
