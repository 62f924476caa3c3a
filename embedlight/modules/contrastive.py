"""Contrastive fine-tuning (C-Pack/BGE, E5, GTR, GTE recipes) as a LightningModule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import nn

from embedlight.data.batch import Batch
from embedlight.losses.fields import batch_fields
from embedlight.models.embedder import Embedder
from embedlight.modules.grad_cache import GradCache
from embedlight.modules.optim import ManualOptimization, configure, current_lr


class ContrastiveModule(L.LightningModule):
    """Trains an :class:`~embedlight.models.embedder.Embedder` with an injected loss.

    Triplet batches (query + G documents) go to ``loss``; scored-pair batches (they carry ``labels``)
    go to ``pair_loss``. Each loss gets exactly the :class:`~embedlight.data.batch.Batch` fields it
    declares (:func:`~embedlight.losses.fields.batch_fields`, read here once: a loss that declares a
    field a batch does not have fails now, not at the first step). The module never looks at which
    loss or pooler it was given.

    Args:
        embedder: The model to train.
        loss: Loss for query/document groups (e.g. ``infonce``).
        pair_loss: Loss for scored pairs (e.g. ``cosent``); needed only if the data has them.
        optimizer: Partial taking parameter groups (default AdamW, lr 2e-5).
        scheduler: Partial taking ``(optimizer, num_training_steps)`` (default warmup + linear decay).
        grad_cache_chunk_size: GradCache (Gao et al., 2021): embed the batch in chunks of this many
            texts and backpropagate the full-batch loss chunk by chunk (see
            :mod:`embedlight.modules.grad_cache`); null or 0 = off. The module then optimises
            manually and applies the Trainer's ``gradient_clip_val``/``gradient_clip_algorithm``/
            ``accumulate_grad_batches`` itself (see :class:`~embedlight.modules.optim.ManualOptimization`).
    """

    def __init__(
        self,
        embedder: Embedder,
        loss: nn.Module,
        pair_loss: nn.Module | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        grad_cache_chunk_size: int | None = None,  # null/0 = off
    ) -> None:
        super().__init__()
        self.embedder = embedder
        self.loss = loss
        self.pair_loss = pair_loss
        self.loss_fields = batch_fields(loss)  # {field: required}
        self.pair_loss_fields = batch_fields(pair_loss) if pair_loss is not None else {}
        self.optimizer_factory = optimizer or (
            lambda params: torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)
        )
        self.scheduler_factory = scheduler
        trained_dims = getattr(loss, "trained_dims", None)  # a Matryoshka loss reports its prefixes
        if trained_dims is not None:
            embedder.trained_dims = trained_dims(embedder.dim)
        self.grad_cache = GradCache(grad_cache_chunk_size) if grad_cache_chunk_size else None
        self.manual = ManualOptimization() if self.grad_cache else None
        self.automatic_optimization = self.manual is None

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embed a tokenised batch, (B, D)."""
        return self.embedder(features)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        pairs = batch.labels is not None
        loss_fn, fields = (self.pair_loss, self.pair_loss_fields) if pairs else (self.loss, self.loss_fields)
        if loss_fn is None:
            raise RuntimeError(
                "a scored-pair batch arrived but no pair_loss is configured (set pair_loss=cosent)"
            )
        inputs = batch.loss_inputs(fields, type(loss_fn).__name__)
        if self.grad_cache is None:
            q = self.embedder(batch.query)  # (B, D)
            d = self.embedder(batch.docs)  # (B*G, D)
            loss = loss_fn(q, d, **inputs)
        else:
            loss = self._grad_cache_step(batch, batch_idx, lambda q, d: loss_fn(q, d, **inputs))
        n = batch.size
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        kind = "train/pair_loss" if pairs else "train/contrastive_loss"
        self.log(kind, loss, batch_size=n)  # per batch type, for mixtures
        if (lr := current_lr(self)) is not None:
            self.log("train/lr", lr, batch_size=n)
        if self.manual is not None:
            self.manual.step(self, batch_idx)
        return loss

    def _grad_cache_step(
        self, batch: Batch, batch_idx: int, loss_fn: Callable[..., torch.Tensor]
    ) -> torch.Tensor:
        """One GradCache forward/backward over the batch's queries and documents (manual optimization)."""
        assert self.grad_cache is not None and self.manual is not None
        scale = 1.0 / self.manual.accumulate  # as Lightning divides an accumulated loss
        return self.grad_cache(
            self.embedder,
            [batch.query, batch.docs],
            loss_fn,
            lambda x: self.manual_backward(x * scale),
            no_sync=getattr(self.trainer.strategy.model, "no_sync", None),  # DDP/FSDP wrapper, if any
            sync=self.manual.will_step(self.trainer, batch_idx),
        )

    def configure_callbacks(self) -> list[L.Callback]:
        # the only hook Lightning runs before it rejects Trainer clipping/accumulation in manual mode
        if self.manual is not None:
            self.manual.take_over(self.trainer)
        return []

    def configure_optimizers(self) -> Any:
        if self.manual is not None:  # accumulation was taken over from the Trainer
            steps = self.manual.optimizer_steps(self.trainer)
        else:
            steps = self.trainer.estimated_stepping_batches
        return configure(self, self.optimizer_factory, self.scheduler_factory, steps)

    def export(self, directory: str) -> str:
        """Write the trained embedder for transformers and sentence-transformers (see ``Embedder.export``)."""
        return self.embedder.export(directory)
