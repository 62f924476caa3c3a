"""ICL fine-tuning of a decoder embedder (bge-en-icl, E5-mistral) as a LightningModule.

The recipe of Li et al., 2024 ("Making Text Embedders Few-Shot Learners", bge-en-icl) and Wang et al.,
2024 ("Improving Text Embeddings with Large Language Models", E5-mistral): a causal LLM with LoRA,
[EOS] last-token pooling, InfoNCE with in-batch and hard negatives at temperature 0.02, queries with
0..n in-context examples (built by :mod:`embedlight.prompts.icl` in :mod:`embedlight.data.icl`'s collator),
raw documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from embedlight.data.batch import Batch
from embedlight.models.embedder import Embedder
from embedlight.modules.contrastive import ContrastiveModule
from embedlight.prompts.icl import DEFAULT_ICL_TEMPLATE, DEFAULT_SEPARATOR, resolve_icl_template


class ICLModule(ContrastiveModule):
    """Trains an :class:`~embedlight.models.embedder.Embedder` on few-shot ICL batches with an injected loss.

    Same contract as :class:`ContrastiveModule` (loss from the registry, optimizer/scheduler
    partials), plus: the example-budget counters of each batch are logged (``icl/examples``,
    ``icl/dropped``, ``icl/truncated``, ``icl/all_dropped``), checkpoints keep only the trainable
    (LoRA) weights by default, and the export records the ICL template.

    Args:
        embedder: The model to train (an ``hf_decoder`` backbone with ``last_token`` pooling).
        loss: Loss for query/document groups (``infonce``, temperature 0.02).
        pair_loss: Loss for scored pairs, if the data has them.
        optimizer: Partial taking parameter groups (default AdamW, lr 1e-4 as bge-en-icl).
        scheduler: Partial taking ``(optimizer, num_training_steps)``.
        template: ICL template written to the export (a name in
            :data:`~embedlight.prompts.icl.ICL_TEMPLATES`, default
            :data:`~embedlight.prompts.icl.DEFAULT_ICL_TEMPLATE`, or a mapping); experiments
            set it from the root ``icl.template``, as the data and the evaluators, so the export
            describes the template that was trained.
        separator: Separator between examples, written to the export (experiments: ``icl.separator``).
        save_trainable_only: Checkpoints hold only parameters that require grad (LoRA adapters, heads)
            instead of the frozen multi-GB base model; loading is non-strict for the frozen rest.
        grad_cache_chunk_size: GradCache chunk size (texts per forward); null/0 = off (see
            :class:`ContrastiveModule`).
    """

    def __init__(
        self,
        embedder: Embedder,
        loss: nn.Module,
        pair_loss: nn.Module | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
        separator: str = DEFAULT_SEPARATOR,
        save_trainable_only: bool = True,
        grad_cache_chunk_size: int | None = None,  # null/0 = off
    ) -> None:
        optimizer = optimizer or (lambda params: torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0))
        super().__init__(embedder, loss, pair_loss, optimizer, scheduler, grad_cache_chunk_size)
        self.template = resolve_icl_template(template)
        self.separator = separator
        self.save_trainable_only = save_trainable_only
        self.strict_loading = not save_trainable_only

    def num_parameters(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        stats = batch.icl
        if stats is not None:
            n = batch.size
            self.log("icl/examples", stats.kept / n, batch_size=n)  # mean examples per query
            counts = {
                "icl/dropped": float(stats.dropped),
                "icl/truncated": float(stats.truncated),
                "icl/all_dropped": float(stats.all_dropped),
            }
            self.log_dict(counts, batch_size=n)  # this batch
            self.log_dict(
                {f"{k}_total": v for k, v in counts.items()},
                batch_size=n,
                on_step=False,
                on_epoch=True,
                reduce_fx="sum",
            )  # the epoch's total
        return loss

    def on_fit_start(self) -> None:
        trainable, total = self.num_parameters()
        for logger in self.loggers:
            logger.log_hyperparams({"params/trainable": trainable, "params/total": total})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if not self.save_trainable_only:
            return
        keep = {name for name, p in self.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in keep}

    def export(self, directory: str) -> str:
        """Write the LoRA-merged embedder for transformers and sentence-transformers, with the ICL template."""
        return self.embedder.export(directory, extra={"icl": {**self.template, "separator": self.separator}})
