"""Samples/s, real-token/s and MFU logging.

MFU (model FLOPs utilisation) = useful model FLOP/s / the machine's peak FLOP/s. Useful FLOPs are
counted on real (non-pad) tokens only, PaLM-style (Chowdhery et al., 2022, appendix B): per token
``6 * N`` for forward + backward through the ``N`` non-embedding weights, plus ``12 * layers * hidden
* T`` for the attention scores and the weighted sum over the row's ``T`` real tokens. The peak comes
from config (``callbacks.throughput.peak_tflops``) or from ``python -m embedlight.bench_matmul
--save``, which measures fp32 and bf16 matmul TFLOP/s on this machine and caches them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from embedlight.utils import write_json

log = logging.getLogger(__name__)

GATED_ACTIVATIONS = {"silu", "swiglu", "geglu", "gelu_pytorch_tanh_gated"}
GATED_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "smollm3"}


def peak_cache_path() -> str:
    """Where ``python -m embedlight.bench_matmul --save`` stores the measured peaks."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "embedlight", "peak_tflops.json")


def non_embedding_params(config: Any) -> int:
    """Weights of the transformer blocks (attention + MLP matrices) from a Hugging Face config.

    Biases and norms are left out (under 1% of the FLOPs); so are the embeddings (a lookup) and
    BERT's unused [CLS] pooler.
    """
    d = int(config.hidden_size)
    layers = int(config.num_hidden_layers)
    heads = int(getattr(config, "num_attention_heads", 1) or 1)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or d // heads)
    ff = int(getattr(config, "intermediate_size", None) or 4 * d)
    attn = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2  # q, o + k, v
    act = str(getattr(config, "hidden_act", "") or getattr(config, "hidden_activation", "")).lower()
    gated = act in GATED_ACTIVATIONS or getattr(config, "model_type", "") in GATED_MODEL_TYPES
    mlp = (3 if gated else 2) * d * ff
    return layers * (attn + mlp)


def train_flops(config: Any, lengths: torch.Tensor) -> float:
    """Forward + backward model FLOPs for rows of ``lengths`` real tokens each.

    ``6 * N`` per token, plus ``12 * layers * hidden * T`` per token of a row of ``T`` tokens.
    """
    lengths = lengths.to(torch.float64)
    n = non_embedding_params(config)
    layers = int(config.num_hidden_layers)
    d = int(getattr(config, "num_attention_heads", 1)) * int(
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    return float(6 * n * lengths.sum() + 12 * layers * d * (lengths * lengths).sum())


def batch_lengths(batch: Any) -> list[torch.Tensor]:
    """Real-token counts per row of every ``attention_mask`` in a batch."""
    if isinstance(batch, dict):
        mask = batch.get("attention_mask")
        if isinstance(mask, torch.Tensor):
            return [mask.sum(dim=-1)]  # (B,)
        return [t for v in batch.values() for t in batch_lengths(v)]
    return []


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


def _precision_key(precision: Any) -> str:
    p = str(precision)
    if "bf16" in p:
        return "bf16"
    if "16" in p:
        return "fp16"
    return "fp32"


def _backbone_config(pl_module: Any) -> Any:
    for path in ("embedder.backbone.model.config", "backbone.model.config", "model.config"):
        obj = pl_module
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "hidden_size") and hasattr(obj, "num_hidden_layers"):
            return obj
    return None


class ThroughputMonitor(L.Callback):
    """Logs ``throughput/samples_per_sec`` (queries, i.e. training pairs), ``throughput/tokens_per_sec``
    (real tokens only), ``throughput/pad_fraction`` and ``throughput/mfu``, averaged over ``window``
    steps, wall clock between step ends (data loading included).

    Args:
        window: Steps per logged average.
        sample_key: Batch key whose rows count as samples (``query``; pretraining: the batch itself).
        peak_tflops: The machine's peak TFLOP/s per device for MFU: a number, a mapping
            ``{fp32: .., bf16: ..}`` picked by the trainer's precision, or None to read the cache
            written by ``python -m embedlight.bench_matmul --save`` (no MFU if there is none).
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
        self._acc = [0.0, 0, 0, 0, 0.0]  # seconds, samples, tokens, slots, flops
        self._total = [0.0, 0, 0, 0, 0.0, 0]  # the same over the run, + steps
        self._config: Any = None
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
        self._config = _backbone_config(pl_module)
        self._peak = self._resolve_peak(trainer)
        if self._config is not None:
            log.info(
                "throughput: %.1fM non-embedding params, MFU peak %s",
                non_embedding_params(self._config) / 1e6,
                f"{self._peak / 1e12:.3f} TFLOP/s" if self._peak else "unknown (no MFU)",
            )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t = time.perf_counter()
        self._first = True

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._t is None:
            self._t = now
            return
        sub = batch.get(self.sample_key, batch) if isinstance(batch, dict) else None  # pretraining: the batch
        samples = int(sub["input_ids"].size(0)) if isinstance(sub, dict) and "input_ids" in sub else 0
        flops = 0.0
        if self._config is not None:
            flops = sum(train_flops(self._config, lengths) for lengths in batch_lengths(batch))
        step = [now - self._t, samples, count_tokens(batch), count_slots(batch), flops]
        self._t = now
        if getattr(self, "_first", False):  # the first step carries warm-up (allocations, caches)
            self._first = False
            self.first_step_seconds = step[0]
        else:
            for i, v in enumerate(step):
                self._total[i] += v
            self._total[5] += 1
        for i, v in enumerate(step):
            self._acc[i] += v
        if (batch_idx + 1) % self.window == 0 and self._acc[0] > 0:
            secs, n, tok, slots, fl = self._acc
            world = trainer.world_size
            self.last = {
                "throughput/samples_per_sec": n * world / secs,
                "throughput/tokens_per_sec": tok * world / secs,
                "throughput/pad_fraction": 1.0 - tok / max(1, slots),
            }
            if self._peak and fl:
                self.last["throughput/tflops"] = fl / secs / 1e12
                self.last["throughput/mfu"] = fl / secs / self._peak
            pl_module.log_dict(self.last, on_step=True, on_epoch=False)
            pl_module.log("samples/s", self.last["throughput/samples_per_sec"], prog_bar=True, logger=False)
            self._acc = [0.0, 0, 0, 0, 0.0]

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        secs, n, tok, slots, fl, steps = self._total
        world = trainer.world_size
        self.summary = {
            "steps_timed": steps,
            "first_step_seconds": self.first_step_seconds,
            "seconds": secs,
            "samples_per_sec": n * world / secs if secs else None,
            "tokens_per_sec": tok * world / secs if secs else None,
            "pad_fraction": 1.0 - tok / max(1, slots),
            "tflops": fl * world / secs / 1e12 if secs else None,
            "mfu": fl / secs / self._peak if secs and self._peak else None,
            "peak_tflops": self._peak / 1e12 if self._peak else None,
            "precision": str(trainer.precision),
        }
        if self.summary_path and trainer.is_global_zero:
            write_json(self.summary_path, self.summary)
