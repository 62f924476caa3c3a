"""Measure this machine's matmul TFLOP/s (fp32, bf16; fp16 on GPU): the peak that MFU is relative to.

Usage::

    python -m embedlight.utils.matmul_peak            # print the table
    python -m embedlight.utils.matmul_peak --save     # also cache it for TokenThroughput's MFU
    python -m embedlight.utils.matmul_peak --json out.json --size 2048 --seconds 2

Square ``n x n @ n x n`` matmuls (2 n^3 FLOPs each), repeated for ``--seconds`` after a warm-up;
the best of ``--trials`` is reported. On the CPU it uses torch's current thread count.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from embedlight.utils.io import write_json


def peak_cache_path() -> str:
    """Where ``python -m embedlight.utils.matmul_peak --save`` stores the measured peaks."""
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=2048, help="matrix size n (default 2048)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per trial")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--json", default=None, help="write the result here")
    parser.add_argument("--save", action="store_true", help=f"cache for MFU logging ({peak_cache_path()})")
    args = parser.parse_args(argv)
    result = measure(args.size, args.seconds, args.trials, args.device)
    print(f"{result['device']} ({result['threads']} threads), {args.size}x{args.size} matmul:")
    for key, value in result["tflops"].items():
        print(f"  {key:<5} {value:8.3f} TFLOP/s")
    for path in [args.json, peak_cache_path() if args.save else None]:
        if path:
            write_json(path, result)
            print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
