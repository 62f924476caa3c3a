"""Learning-rate schedules, built by the LightningModules as Hydra partials."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_decay(
    optimizer: Optimizer,
    num_training_steps: int,
    warmup_ratio: float = 0.1,  # share of steps spent warming up
    warmup_steps: int | None = None,  # absolute warmup; overrides warmup_ratio
    decay: str = "linear",  # linear | cosine | constant
    min_lr_ratio: float = 0.0,  # floor as a fraction of the peak lr
) -> LambdaLR:
    """Linear warmup from 0 to the peak lr, then linear/cosine decay to ``min_lr_ratio`` (or constant)."""
    if decay not in ("linear", "cosine", "constant"):
        raise ValueError(f"scheduler.decay must be linear, cosine or constant, got {decay!r}")
    total = max(1, int(num_training_steps))
    warm = warmup_steps if warmup_steps is not None else int(round(warmup_ratio * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        shape = 1.0 - progress if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return min_lr_ratio + (1.0 - min_lr_ratio) * shape

    return LambdaLR(optimizer, factor)
