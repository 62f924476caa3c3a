"""Exact mid-epoch resume: skip the batches already trained on and restore the RNG."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class ExactResume(L.Callback):
    """Makes a resumed run see the same batches and dropout masks as an uninterrupted one.

    The batch sampler's epoch order is a pure function of ``(seed, epoch)``; on a mid-epoch restart
    this callback tells it to skip the batches the checkpoint had completed, and it restores torch's
    RNG right before the first resumed batch.
    """

    def __init__(self) -> None:
        self._pending_rng: dict[str, Any] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # runs after the checkpoint restored the loops and before the epoch's iterator is created
        loop = trainer.fit_loop.epoch_loop
        if not (trainer.fit_loop.restarting or loop.restarting):
            return
        # a checkpoint is written in on_train_batch_end: `processed` counts the batches already trained on
        done = loop.batch_progress.current.processed
        dl = trainer.train_dataloader
        sampler = getattr(dl, "batch_sampler", None)
        if done and hasattr(sampler, "skip_batches"):
            sampler.skip_batches(done)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending_rng is not None:
            torch.set_rng_state(self._pending_rng["cpu"])
            if "cuda" in self._pending_rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._pending_rng["cuda"])
            self._pending_rng = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return {"rng": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict.get("rng")
