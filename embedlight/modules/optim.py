"""Optimizer helpers shared by the LightningModules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from torch import nn

NO_DECAY = ("bias", "LayerNorm.weight", "layernorm.weight", "layer_norm.weight", "norm.weight")


def param_groups(model: nn.Module, weight_decay: float | None = None) -> list[dict[str, Any]]:
    """Trainable parameters split into decayed and non-decayed (biases, norms) groups."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith(NO_DECAY) or p.ndim < 2 else decay).append(p)
    groups: list[dict[str, Any]] = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    if weight_decay is not None:
        groups[0]["weight_decay"] = weight_decay
    return [g for g in groups if g["params"]]


def configure(module: nn.Module, optimizer: Callable, scheduler: Callable | None, total_steps: int) -> Any:
    """Build the Lightning ``configure_optimizers`` return value from Hydra partials."""
    opt = optimizer(param_groups(module))
    if scheduler is None:
        return opt
    return {
        "optimizer": opt,
        "lr_scheduler": {"scheduler": scheduler(opt, num_training_steps=total_steps), "interval": "step"},
    }


def current_lr(module: L.LightningModule) -> float | None:
    """The first parameter group's learning rate, or None outside a fit."""
    trainer = module._trainer
    if trainer is None or not trainer.optimizers:
        return None
    return float(trainer.optimizers[0].param_groups[0]["lr"])
