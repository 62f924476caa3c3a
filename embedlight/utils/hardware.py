"""Hardware defaults picked at run time: precision and data-loader workers for ``hardware=auto``.

``conf/hardware/auto.yaml`` (the default) sets ``trainer.precision: ${el.precision:${trainer.accelerator}}``:
bf16 mixed precision where bf16 matrix products are fast, fp32 elsewhere. Data modules take
``num_workers: auto``: up to 8 worker processes per GPU (collation overlaps the GPU's step), none on the CPU
(a worker competes with the training threads for the same cores).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from omegaconf import OmegaConf

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # CPU instructions with native bf16 matrix products


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True if ``/proc/cpuinfo`` lists AMX-BF16 or AVX512-BF16 (Intel Sapphire Rapids+, AMD Zen 4+).

    ``EMBEDLIGHT_CPU_BF16=0`` or ``=1`` overrides the detection (a VM that hides its CPU flags, or a
    test of the other kind of machine's defaults).
    """
    forced = os.environ.get("EMBEDLIGHT_CPU_BF16", "").strip().lower()
    if forced in ("0", "false", "no", "1", "true", "yes"):
        return forced in ("1", "true", "yes")
    if forced:
        raise ValueError(f"EMBEDLIGHT_CPU_BF16 must be 0 or 1, got {forced!r}")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(f in flags for f in BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


def auto_precision(accelerator: Any = "auto") -> str:
    """Lightning precision for ``accelerator``: ``bf16-mixed`` where bf16 is fast, else ``32-true``.

    CUDA GPUs with bf16 (Ampere and later) and CPUs with AMX/AVX512-BF16 get bf16 autocast. Other
    CPUs (AVX2 only) run bf16 matmuls on a slow path, about 10x slower than fp32 (measured in
    ``experiments/performance``), so they stay in fp32; so do MPS and older GPUs.
    """
    acc = str(accelerator).lower()
    if acc in ("gpu", "cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
        if acc != "auto":
            return "32-true"
    if acc in ("cpu", "auto") and cpu_has_fast_bf16():
        return "bf16-mixed"
    return "32-true"


def _on_cuda(trainer: Any) -> bool:
    return trainer is not None and type(trainer.accelerator).__name__ == "CUDAAccelerator"


def resolve_num_workers(num_workers: int | str, trainer: Any = None) -> int:
    """``auto``: up to 8 workers per process when training on CUDA (CPU cores allowing), else 0."""
    if num_workers != "auto":
        return int(num_workers)
    if not _on_cuda(trainer):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_process = cores // max(1, trainer.num_devices)
    return max(0, min(8, per_process - 1))


def loader_kwargs(num_workers: int | str, trainer: Any = None) -> dict[str, Any]:
    """DataLoader settings shared by the data modules: workers, persistent workers, pinned memory."""
    workers = resolve_num_workers(num_workers, trainer)
    return {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": _on_cuda(trainer)}


def set_cudnn_attention(enabled: bool) -> None:
    """Switch PyTorch's cuDNN backend of ``scaled_dot_product_attention`` on or off (process-wide).

    cuDNN's attention builds an execution plan for every new sequence length. With dynamic padding
    every batch has new lengths, and the plans cost about 10 ms of CPU per attention call on an H100
    (``experiments/performance``): bf16 training of MiniLM ran at 0.6x fp32 until this was switched
    off. Without it, SDPA uses the flash or memory-efficient kernels, which need no plan.
    """
    import torch

    if hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
        torch.backends.cuda.enable_cudnn_sdp(enabled)


def register_resolvers() -> None:
    """Register ``${el.precision:<accelerator>}`` with OmegaConf (idempotent)."""
    if not OmegaConf.has_resolver("el.precision"):
        OmegaConf.register_new_resolver("el.precision", auto_precision)
