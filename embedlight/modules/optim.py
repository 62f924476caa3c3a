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


class ManualOptimization:
    """The optimizer step of Lightning's automatic loop, for a module that runs its own backward.

    Lightning's manual optimization (needed by GradCache, which backpropagates chunk by chunk) rejects
    ``Trainer(gradient_clip_val=..., accumulate_grad_batches=...)``. :meth:`take_over` moves those
    settings from the Trainer to this object (from ``LightningModule.configure_callbacks``, the one
    hook that runs before Lightning's check), and :meth:`step` applies them as the automatic loop
    does: clip, optimizer step, zero the gradients, step the per-step lr scheduler; every
    ``accumulate`` batches and at the last batch of an epoch.
    """

    def __init__(self) -> None:
        self.clip_val: float | None = None
        self.clip_algorithm: str | None = None
        self.accumulate = 1

    def take_over(self, trainer: L.Trainer) -> None:
        """Adopt the Trainer's clipping and accumulation settings and clear them there."""
        if trainer.gradient_clip_val:
            self.clip_val = float(trainer.gradient_clip_val)
            self.clip_algorithm = trainer.gradient_clip_algorithm
            trainer.gradient_clip_val = None
        if trainer.accumulate_grad_batches != 1:
            self.accumulate = int(trainer.accumulate_grad_batches)
            trainer.accumulate_grad_batches = 1

    def optimizer_steps(self, trainer: L.Trainer) -> int | float:
        """The Trainer's estimate of optimizer steps, with the accumulation taken over (lr schedule length)."""
        saved = trainer.accumulate_grad_batches
        trainer.accumulate_grad_batches = self.accumulate
        try:
            return trainer.estimated_stepping_batches
        finally:
            trainer.accumulate_grad_batches = saved

    def will_step(self, trainer: L.Trainer, batch_idx: int) -> bool:
        """Whether this batch ends an accumulation window (and so syncs and steps)."""
        last = batch_idx + 1 >= trainer.num_training_batches
        return (batch_idx + 1) % self.accumulate == 0 or last

    def step(self, module: L.LightningModule, batch_idx: int) -> None:
        """Clip, step the optimizer and the lr scheduler, zero the gradients (when the window ends)."""
        if not self.will_step(module.trainer, batch_idx):
            return
        opt = module.optimizers()
        if self.clip_val:
            module.clip_gradients(
                opt, gradient_clip_val=self.clip_val, gradient_clip_algorithm=self.clip_algorithm
            )
        opt.step()
        opt.zero_grad()
        scheduler = module.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
