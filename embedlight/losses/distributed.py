"""Cross-device gathering for in-batch negatives across data-parallel ranks, and fp32 scoring."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """Return ``(rank, world_size)``; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping the gradient path to each rank's slice.

    All ranks must pass tensors of the same shape (the samplers pad the last batch by dropping it).
    """
    _, size = world()
    if size == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)  # (W*B, D)


def gather_nograd(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (e.g. integer text hashes) from every rank along dim 0; no gradient."""
    _, size = world()
    if size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)  # (W*B, ...)


@contextlib.contextmanager
def fp32_scores(device: torch.device) -> Iterator[None]:
    """Autocast off: similarity logits are computed in fp32 even inside a bf16/fp16 autocast region.

    At temperature 0.02 a bf16 cosine (8 mantissa bits, error up to ~2e-3) moves a logit by ~0.1; the
    matmul of a few thousand embeddings costs little in fp32 next to the encoder.
    """
    with torch.autocast(device_type=device.type, enabled=False):
        yield
