"""Contrastive fine-tuning (C-Pack/BGE, E5, GTR, GTE recipes) as a LightningModule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from embedlight.embedder import Embedder
from embedlight.modules.optim import configure, current_lr


class ContrastiveModule(L.LightningModule):
    """Trains an :class:`~embedlight.embedder.Embedder` with an injected loss.

    Triplet batches (query + G documents) go to ``loss``; scored-pair batches (they carry ``labels``)
    go to ``pair_loss``. The module never looks at which loss or pooler it was given.

    Args:
        embedder: The model to train.
        loss: Loss for query/document groups (e.g. ``infonce``).
        pair_loss: Loss for scored pairs (e.g. ``cosent``); needed only if the data has them.
        optimizer: Partial taking parameter groups (default AdamW, lr 2e-5).
        scheduler: Partial taking ``(optimizer, num_training_steps)`` (default warmup + linear decay).
    """

    def __init__(
        self,
        embedder: Embedder,
        loss: nn.Module,
        pair_loss: nn.Module | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        self.embedder = embedder
        self.loss = loss
        self.pair_loss = pair_loss
        self.optimizer_factory = optimizer or (
            lambda params: torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)
        )
        self.scheduler_factory = scheduler

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embed a tokenised batch, (B, D)."""
        return self.embedder(features)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        q = self.embedder(batch["query"])  # (B, D)
        d = self.embedder(batch["docs"])  # (B*G, D)
        labels = batch.get("labels")
        loss_fn = self.loss if labels is None else self.pair_loss
        if loss_fn is None:
            raise RuntimeError(
                "a scored-pair batch arrived but no pair_loss is configured (set pair_loss=cosent)"
            )
        loss = loss_fn(
            q,
            d,
            labels=labels,
            in_batch_negatives=batch.get("in_batch_negatives"),
            teacher_scores=batch.get("teacher_scores"),  # (B, G) for distillation losses, else None
        )
        self.log("train/loss", loss, prog_bar=True, batch_size=q.size(0))
        kind = "train/contrastive_loss" if labels is None else "train/pair_loss"
        self.log(kind, loss, batch_size=q.size(0))  # per batch type, for mixtures
        if (lr := current_lr(self)) is not None:
            self.log("train/lr", lr, batch_size=q.size(0))
        return loss

    def configure_optimizers(self) -> Any:
        return configure(
            self, self.optimizer_factory, self.scheduler_factory, self.trainer.estimated_stepping_batches
        )

    def export(self, directory: str) -> str:
        """Write the trained embedder for transformers and sentence-transformers (see ``Embedder.export``)."""
        return self.embedder.export(directory)
