"""Samples/s and real-token/s logging."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch


def count_tokens(batch: Any) -> int:
    """Real (non-pad) tokens in a batch: the sum of every ``attention_mask`` in it."""
    if isinstance(batch, dict):
        if "attention_mask" in batch and isinstance(batch["attention_mask"], torch.Tensor):
            return int(batch["attention_mask"].sum())
        return sum(count_tokens(v) for v in batch.values())
    return 0


def count_slots(batch: Any) -> int:
    """Token slots including padding."""
    if isinstance(batch, dict):
        if "attention_mask" in batch and isinstance(batch["attention_mask"], torch.Tensor):
            return batch["attention_mask"].numel()
        return sum(count_slots(v) for v in batch.values())
    return 0


class ThroughputMonitor(L.Callback):
    """Logs ``throughput/samples_per_sec`` (queries, i.e. training pairs), ``throughput/tokens_per_sec``
    (real tokens only) and ``throughput/pad_fraction``, averaged over ``window`` steps, wall clock
    between step ends (data loading included)."""

    def __init__(self, window: int = 10, sample_key: str = "query") -> None:
        self.window = window
        self.sample_key = sample_key
        self._t: float | None = None
        self._acc = [0.0, 0, 0, 0]  # seconds, samples, tokens, slots
        self.last: dict[str, float] = {}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._t is None:
            self._t = now
            return
        sub = batch.get(self.sample_key, batch) if isinstance(batch, dict) else None  # pretraining: the batch
        samples = int(sub["input_ids"].size(0)) if isinstance(sub, dict) and "input_ids" in sub else 0
        self._acc[0] += now - self._t
        self._acc[1] += samples
        self._acc[2] += count_tokens(batch)
        self._acc[3] += count_slots(batch)
        self._t = now
        if (batch_idx + 1) % self.window == 0 and self._acc[0] > 0:
            secs, n, tok, slots = self._acc
            world = trainer.world_size
            self.last = {
                "throughput/samples_per_sec": n * world / secs,
                "throughput/tokens_per_sec": tok * world / secs,
                "throughput/pad_fraction": 1.0 - tok / max(1, slots),
            }
            pl_module.log_dict(self.last, on_step=True, on_epoch=False)
            pl_module.log("samples/s", self.last["throughput/samples_per_sec"], prog_bar=True, logger=False)
            self._acc = [0.0, 0, 0, 0]
