"""Memory curve of one contrastive training step of MiniLM vs global batch size, with and without GradCache.

Each point runs in a child process (a fresh interpreter, so peak RSS belongs to that point alone)
watched by this parent: it polls the child's RSS from /proc and kills it above a cap (default 10 GiB,
lowered to leave 2 GiB of the machine's available memory to other jobs). Recorded per point: peak RSS
(the parent's polling and the child's own ``ru_maxrss``), the time of the timed optimizer step(s),
and whether it was killed.

The step is the real one: ``all-MiniLM-L6-v2`` (``HFEncoder``) + mean pooling + normalisation,
InfoNCE (temperature 0.02, in-batch + 1 hard negative, group size 2), AdamW, fp32, on synthetic
token ids of fixed length (queries and passages: ``--query-len`` / ``--passage-len`` tokens).

Usage (from the repository root):
    PYTHONPATH=$PWD python experiments/scale/run_curve.py --out experiments/scale/results.json
    PYTHONPATH=$PWD python experiments/scale/run_curve.py --batches 64 4096 --modes gradcache
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

GIB = 1024**3


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def available_bytes() -> int:
    """MemAvailable of the machine."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def child(
    batch: int,
    chunk: int,
    query_len: int,
    passage_len: int,
    steps: int,
    threads: int,
    loss_phase: bool = False,
) -> dict:
    """Build MiniLM and time ``steps`` optimizer steps at global batch ``batch`` (chunk 0 = no GradCache).

    ``loss_phase``: instead, one real GradCache step at batch ``chunk`` (model, optimizer state, one
    chunk's activations), then GradCache's full-batch phase at ``batch`` alone: the loss and its
    gradient over random (batch, D) / (2*batch, D) embeddings. The peak is GradCache's at ``batch``
    except for the repeated chunk passes, which are each the size of the first.
    """
    import torch

    torch.set_num_threads(threads)
    from embedlight.backbones.hf_encoder import HFEncoder
    from embedlight.losses.infonce import InfoNCELoss
    from embedlight.models.embedder import Embedder
    from embedlight.modules.grad_cache import GradCache
    from embedlight.poolers.mean import MeanPooler

    torch.manual_seed(0)
    embedder = Embedder(HFEncoder("all-MiniLM-L6-v2"), MeanPooler()).train()
    loss_fn = InfoNCELoss(temperature=0.02)
    opt = torch.optim.AdamW([p for p in embedder.parameters() if p.requires_grad], lr=2e-5)
    vocab = embedder.tokenizer.vocab_size

    def features(rows: int, length: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(1000, vocab, (rows, length))  # (rows, L) ordinary word pieces
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    if loss_phase:
        q, d = features(chunk, query_len), features(2 * chunk, passage_len)
        GradCache(chunk)(embedder, [q, d], loss_fn, lambda x: x.backward())
        opt.step()
        opt.zero_grad(set_to_none=True)
        start = time.perf_counter()
        dim = embedder.dim
        qe = torch.nn.functional.normalize(torch.randn(batch, dim), dim=-1).requires_grad_()  # (B, D)
        de = torch.nn.functional.normalize(torch.randn(2 * batch, dim), dim=-1).requires_grad_()  # (2B, D)
        grads = torch.autograd.grad(loss_fn(qe, de), [qe, de])
        assert all(torch.isfinite(g).all() for g in grads)
        return {
            "loss_phase_s": time.perf_counter() - start,
            "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }

    times = []
    for _ in range(steps):
        q, d = features(batch, query_len), features(2 * batch, passage_len)  # group size 2
        start = time.perf_counter()
        if chunk:
            loss = GradCache(chunk)(embedder, [q, d], loss_fn, lambda x: x.backward())
        else:
            loss = loss_fn(embedder(q), embedder(d))
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
        assert torch.isfinite(loss)
    return {"step_s": times, "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def run_point(args: argparse.Namespace, batch: int, chunk: int, loss_phase: bool = False) -> dict:
    """Run one point in a watched child process."""
    cap = min(args.cap_gib * GIB, available_bytes() - 2 * GIB)
    cmd = [
        sys.executable,
        __file__,
        "--child",
        json.dumps([batch, chunk, args.query_len, args.passage_len, args.steps, args.threads, loss_phase]),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    peak, killed, start = 0, False, time.time()
    while proc.poll() is None:
        peak = max(peak, rss_bytes(proc.pid))
        if peak > cap:
            proc.kill()
            killed = True
            break
        if time.time() - start > args.timeout:
            proc.kill()
            break
        time.sleep(0.02)
    out, _ = proc.communicate()
    result = {
        "batch": batch,
        "gradcache_chunk": chunk or None,
        "mode": "loss_phase" if loss_phase else ("gradcache" if chunk else "plain"),
        "cap_bytes": int(cap),
        "poll_peak_rss_bytes": peak,
    }
    if killed:
        result["status"] = f"killed: RSS passed the {cap / GIB:.1f} GiB cap"
    elif proc.returncode != 0:
        result["status"] = f"failed (exit {proc.returncode}, {time.time() - start:.0f} s)"
    else:
        result.update(json.loads(out.strip().splitlines()[-1]))
        result["status"] = "ok"
        result["peak_rss_bytes"] = max(peak, result["ru_maxrss_bytes"])
    return result


def point_mode(p: dict) -> str:
    """``plain``, ``gradcache`` or ``loss_phase`` (older records carry no ``mode``)."""
    return p.get("mode", "gradcache" if p["gradcache_chunk"] else "plain")


def table(paths: list[str]) -> str:
    """A markdown table of every point in the result files."""
    points = [p for path in paths for p in json.load(open(path))["points"]]
    points.sort(key=lambda p: (point_mode(p), p["batch"]))
    ref = next(
        (p for p in points if p["batch"] == 64 and point_mode(p) == "gradcache" and p["status"] == "ok"), None
    )
    lines = [
        "| mode | global batch | peak RSS (GiB) | x GradCache B=64 | time (s): step; loss_phase: that phase alone | status |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        mode = point_mode(p)
        peak = p.get("peak_rss_bytes") or p["poll_peak_rss_bytes"]
        ratio = f"{peak / ref['peak_rss_bytes']:.2f}" if ref and p["status"] == "ok" else "-"
        step = p.get("step_s") or ([p["loss_phase_s"]] if "loss_phase_s" in p else [])
        when = ", ".join(f"{t:.0f}" for t in step) or "-"
        gib = f"{peak / GIB:.2f}" if p["status"] == "ok" else "-"
        if p["status"].startswith("killed"):
            gib = f"> {p['cap_bytes'] / GIB:.1f}"
        lines.append(f"| {mode} | {p['batch']} | {gib} | {ratio} | {when} | {p['status']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 4096])
    parser.add_argument(
        "--modes", nargs="+", default=["plain", "gradcache"], choices=["plain", "gradcache", "loss_phase"]
    )
    parser.add_argument("--chunk", type=int, default=64, help="GradCache chunk size (texts per forward)")
    parser.add_argument("--query-len", type=int, default=32)
    parser.add_argument("--passage-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1, help="timed optimizer steps per point")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cap-gib", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per point")
    parser.add_argument("--out", default="experiments/scale/results.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table", nargs="+", help="print a markdown table of these result files and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    results = json.load(open(args.out)) if os.path.exists(args.out) else {"points": []}
    results["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / GIB:.0f} GiB, CPU only, shared with other jobs"
    )
    results["settings"] = {
        k: v for k, v in vars(args).items() if k not in ("child", "out", "batches", "modes")
    }
    for mode in args.modes:
        for batch in args.batches:
            chunk = 0 if mode == "plain" else args.chunk
            point = run_point(args, batch, chunk, loss_phase=mode == "loss_phase")
            point["when_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            results["points"] = [
                p
                for p in results["points"]
                if (p["batch"], p.get("mode", point_mode(p))) != (batch, point["mode"])
            ] + [point]
            tmp = args.out + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(results, fh, indent=1)
            os.replace(tmp, args.out)
            print(json.dumps(point), flush=True)
            if point["status"] != "ok" and mode == "plain":
                break  # larger plain batches need even more memory


if __name__ == "__main__":
    main()
