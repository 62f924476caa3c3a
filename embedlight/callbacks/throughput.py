"""Samples/s, real-token/s and MFU logging (:class:`TokenThroughput`).

MFU (model FLOPs utilisation) = useful model FLOP/s / the machine's peak FLOP/s. Useful FLOPs are
counted on real (non-pad) tokens only, by the FLOP model the trained module reports
(:mod:`embedlight.utils.flops`): ``pl_module.flop_model()`` if the LightningModule has one (RetroMAE: encoder,
decoder and MLM heads), else its embedder's ``backbone.flop_model()`` (6 FLOPs per trained weight and
token, 4 per frozen one as under LoRA, plus attention). The peak comes from config
(``callbacks.throughput.peak_tflops``) or from ``embedlight-matmul-peak save=true``, which
measures fp32 and bf16 matmul TFLOP/s on this machine and caches them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from embedlight.utils.flops import FlopModel
from embedlight.utils.io import write_json
from embedlight.utils.matmul_peak import peak_cache_path

log = logging.getLogger(__name__)


class TokenTally:
    """Counts samples, real tokens, token slots and ``sum(T^2)`` over steps without a device sync.

    Per-row lengths stay on the batch's device and are summed there; only :meth:`read` copies the
    sums to the host (one sync), so a GPU run is not stalled once per step by the bookkeeping.
    """

    def __init__(self) -> None:
        self.samples = 0
        self.slots = 0
        self.steps = 0
        self._sums: torch.Tensor | None = None  # (2,) int64: sum(T), sum(T^2)

    def add(self, batch: Any, samples: int) -> None:
        """Add one step's ``batch`` (any nesting of dicts with ``attention_mask``) of ``samples`` rows."""
        self.samples += samples
        self.steps += 1
        for mask in batch_masks(batch):
            lengths = mask.sum(dim=-1, dtype=torch.int64)  # (B,)
            sums = torch.stack([lengths.sum(), (lengths * lengths).sum()])  # (2,)
            self._sums = sums if self._sums is None else self._sums + sums
            self.slots += mask.numel()

    def absorb(self, other: TokenTally) -> None:
        """Add ``other``'s counts to this tally (on the device: no sync)."""
        self.samples += other.samples
        self.slots += other.slots
        self.steps += other.steps
        if other._sums is not None:
            self._sums = other._sums if self._sums is None else self._sums + other._sums

    def read(self) -> tuple[int, int]:
        """``(sum(T), sum(T^2))`` on the host (syncs the device once)."""
        if self._sums is None:
            return 0, 0
        tokens, squared = self._sums.tolist()
        return int(tokens), int(squared)


def batch_masks(batch: Any) -> list[torch.Tensor]:
    """Every ``attention_mask`` in a batch (any nesting of dicts and dataclasses such as ``Batch``)."""
    if isinstance(batch, dict):
        mask = batch.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            return [mask]
        return [t for v in batch.values() for t in batch_masks(v)]
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return [t for f in dataclasses.fields(batch) for t in batch_masks(getattr(batch, f.name))]
    return []


def batch_samples(batch: Any, key: str) -> int:
    """Rows of the features at ``key`` (a dict key or a dataclass field), else of the batch itself."""
    sub = batch.get(key, batch) if isinstance(batch, dict) else getattr(batch, key, batch)
    return int(sub["input_ids"].size(0)) if isinstance(sub, dict) and "input_ids" in sub else 0


def batch_lengths(batch: Any) -> list[torch.Tensor]:
    """Real-token counts per row of every ``attention_mask`` in a batch."""
    return [mask.sum(dim=-1) for mask in batch_masks(batch)]  # (B,) each


def count_tokens(batch: Any) -> int:
    """Real (non-pad) tokens in a batch: the sum of every ``attention_mask`` in it."""
    return sum(int(mask.sum()) for mask in batch_masks(batch))


def count_slots(batch: Any) -> int:
    """Token slots including padding."""
    return sum(mask.numel() for mask in batch_masks(batch))


def _precision_key(precision: Any) -> str:
    p = str(precision)
    if "bf16" in p:
        return "bf16"
    if "16" in p:
        return "fp16"
    return "fp32"


def resolve_flop_model(pl_module: Any) -> FlopModel | None:
    """The FLOP model the module reports: its own ``flop_model()``, else its embedder backbone's."""
    report = getattr(pl_module, "flop_model", None)
    if report is None:
        backbone = getattr(getattr(pl_module, "embedder", None), "backbone", None)
        report = getattr(backbone, "flop_model", None)
    return report() if callable(report) else None


class TokenThroughput(L.Callback):
    """Logs ``throughput/samples_per_sec`` (queries, i.e. training pairs), ``throughput/tokens_per_sec``
    (real tokens only), ``throughput/pad_fraction`` and ``throughput/mfu``, averaged over ``window``
    steps, wall clock between step ends (data loading included).

    Args:
        window: Steps per logged average.
        sample_key: Batch key whose rows count as samples (``query``; pretraining: the batch itself).
        peak_tflops: The machine's peak TFLOP/s per device for MFU: a number, a mapping
            ``{fp32: .., bf16: ..}`` picked by the trainer's precision, or None to read the cache
            written by ``embedlight-matmul-peak save=true`` (no MFU if there is none).
        summary_path: If set, write a JSON summary at the end of training: steps, seconds from the
            first to the last step end, samples/s, tokens/s, pad fraction, MFU (the first step, with
            its warm-up, is excluded; its time is reported as ``first_step_seconds``).
    """

    def __init__(
        self,
        window: int = 10,
        sample_key: str = "query",
        peak_tflops: float | Mapping[str, float] | None = None,
        summary_path: str | None = None,
    ) -> None:
        self.window = window
        self.sample_key = sample_key
        self.peak_tflops = peak_tflops
        self.summary_path = summary_path
        self._t: float | None = None
        self._first = True
        self._window = TokenTally()  # the steps since the last window end
        self._run = TokenTally()  # every closed window
        self._run_seconds = 0.0
        self._flops: FlopModel | None = None
        self._peak: float | None = None
        self.first_step_seconds: float | None = None
        self.last: dict[str, float] = {}
        self.summary: dict[str, Any] = {}

    def _resolve_peak(self, trainer: L.Trainer) -> float | None:
        peak: Any = self.peak_tflops
        key = _precision_key(trainer.precision)
        if peak is None and os.path.exists(peak_cache_path()):
            try:
                with open(peak_cache_path(), encoding="utf-8") as fh:
                    peak = json.load(fh).get("tflops")
            except (OSError, ValueError):
                peak = None
        if isinstance(peak, Mapping):
            peak = peak.get(key, peak.get("fp32"))
        return float(peak) * 1e12 if peak else None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flops = resolve_flop_model(pl_module)
        self._peak = self._resolve_peak(trainer)
        log.info(
            "throughput: FLOP model %s, MFU peak %s",
            self._flops if self._flops is not None else "none reported (no MFU)",
            f"{self._peak / 1e12:.3f} TFLOP/s" if self._peak else "unknown (no MFU)",
        )

    @staticmethod
    def _sync(pl_module: L.LightningModule) -> float:
        """Wait for queued device work, then read the clock (timings cover finished work only)."""
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t = self._sync(pl_module)
        self._first = True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # the run's first step carries warm-up (allocations, caches): timed alone, not counted
        if self._first:
            now = self._sync(pl_module)
            self.first_step_seconds = now - (self._t if self._t is not None else now)
            self._t, self._first = now, False
            return
        self._window.add(batch, batch_samples(batch, self.sample_key))  # pretraining: the batch's rows
        if self._window.steps < self.window:
            return  # no host-device sync between window ends
        closed, seconds = self._close_window(pl_module)
        self.last = self._rates(closed, seconds, trainer.world_size)
        pl_module.log_dict(self.last, on_step=True, on_epoch=False)
        pl_module.log("samples/s", self.last["throughput/samples_per_sec"], prog_bar=True, logger=False)

    def _close_window(self, pl_module: L.LightningModule) -> tuple[TokenTally, float]:
        """End the current window, add it to the run; returns it with its seconds (device work finished)."""
        now = self._sync(pl_module)
        seconds, self._t = now - self._t, now
        closed, self._window = self._window, TokenTally()
        self._run.absorb(closed)
        self._run_seconds += seconds
        return closed, seconds

    def _rates(self, tally: TokenTally, seconds: float, world: int) -> dict[str, float]:
        tokens, squared = tally.read()
        out = {
            "throughput/samples_per_sec": tally.samples * world / seconds if seconds else 0.0,
            "throughput/tokens_per_sec": tokens * world / seconds if seconds else 0.0,
            "throughput/pad_fraction": 1.0 - tokens / max(1, tally.slots),
        }
        if self._flops is not None and seconds:
            flops = self._flops.train_flops(tokens, squared)
            out["throughput/tflops"] = flops * world / seconds / 1e12
            if self._peak:
                out["throughput/mfu"] = flops / seconds / self._peak
        return out

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._t is not None and self._window.steps:  # the steps since the last window end
            self._close_window(pl_module)
        secs = self._run_seconds
        rates = self._rates(self._run, secs, trainer.world_size)
        self.summary = {
            "steps_timed": self._run.steps,
            "first_step_seconds": self.first_step_seconds,
            "seconds": secs,
            "samples_per_sec": rates["throughput/samples_per_sec"] if secs else None,
            "tokens_per_sec": rates["throughput/tokens_per_sec"] if secs else None,
            "pad_fraction": rates["throughput/pad_fraction"],
            "tflops": rates.get("throughput/tflops"),
            "mfu": rates.get("throughput/mfu"),
            "peak_tflops": self._peak / 1e12 if self._peak else None,
            "precision": str(trainer.precision),
        }
        if self.summary_path and trainer.is_global_zero:
            write_json(self.summary_path, self.summary)
