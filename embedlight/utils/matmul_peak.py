"""Measure this machine's matmul TFLOP/s (fp32, bf16; fp16 on GPU): the peak that MFU is relative to.

The command is ``embedlight-matmul-peak`` (:mod:`embedlight.cli.matmul_peak`, a Hydra main over
:func:`run`); :func:`measure` is the measurement itself.

Square ``n x n @ n x n`` matmuls (2 n^3 FLOPs each), repeated for ``seconds`` after a warm-up;
the best of ``trials`` is reported. On the CPU it uses torch's current thread count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import torch

from embedlight.utils.io import write_json
from embedlight.utils.outputs import guard_output, write_summary


def peak_cache_path() -> str:
    """Where ``embedlight-matmul-peak save=true`` stores the measured peaks (read by ``TokenThroughput``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "embedlight", "peak_tflops.json")


def matmul_tflops(
    dtype: torch.dtype, n: int = 2048, seconds: float = 1.0, trials: int = 3, device: str = "cpu"
) -> float:
    """Best-of-``trials`` TFLOP/s of ``n x n`` matmuls in ``dtype`` on ``device``.

    If the first (warm-up) call alone takes longer than ``seconds``, that call is the measurement.
    """
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    torch.mm(a, b)
    sync()
    warm = time.perf_counter() - start
    best = 2 * n**3 / warm / 1e12
    if warm > seconds:  # a slow path (e.g. bf16 without native CPU support): one call is the measurement
        return best
    for _ in range(trials):
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            reps += 1
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        best = max(best, 2 * n**3 * reps / elapsed / 1e12)
    return best


def measure(n: int = 2048, seconds: float = 1.0, trials: int = 3, device: str | None = None) -> dict:
    """``{device, threads, size, tflops: {fp32, bf16[, fp16]}}``."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device.startswith("cuda"):
        dtypes["fp16"] = torch.float16
        torch.backends.cuda.matmul.allow_tf32 = False
        name = torch.cuda.get_device_name()
    else:
        name = _cpu_name()
    result = {"device": name, "threads": torch.get_num_threads(), "size": n, "tflops": {}}
    for key, dtype in dtypes.items():
        result["tflops"][key] = matmul_tflops(dtype, n, seconds, trials, device)
    return result


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def run(cfg: Mapping[str, Any]) -> dict:
    """Measure as configured (``size``, ``seconds``, ``trials``, ``device``), print the table, write
    ``output`` (guarded: refused if it exists, unless ``overwrite``) and, with ``save``, the MFU cache.

    The cache (:func:`peak_cache_path`) is replaced by every ``save``: it holds this machine's latest
    measurement, not a result to keep.
    """
    size = int(cfg.get("size", 2048))
    output = cfg.get("output")
    if output:
        guard_output(output, bool(cfg.get("overwrite", False)))
    result = measure(size, float(cfg.get("seconds", 1.0)), int(cfg.get("trials", 3)), cfg.get("device"))
    lines = [f"{result['device']} ({result['threads']} threads), {size}x{size} matmul:"]
    lines += [f"  {key:<5} {value:8.3f} TFLOP/s" for key, value in result["tflops"].items()]
    if cfg.get("save"):
        write_json(peak_cache_path(), result)
        lines.append(f"wrote {peak_cache_path()}")
    if output:
        lines.append(f"wrote {output}")
    return write_summary(output, result, lines)
