"""What scales with the row count in RAM when training on a large JSONL: measure it stage by stage.

Usage (writes the JSONL if absent, then measures in this process, guarded at 6 GiB RSS):
    HF_DATASETS_CACHE=/tmp/big/hf PYTHONPATH=. python experiments/data/large_data_rss.py \\
        --rows 2000000 --file /tmp/big/train.jsonl --out experiments/data/large_data.json

Anonymous RSS (``RssAnon``: Python objects, heap) is what must fit in RAM; file-backed RSS
(``RssFile``: pages of the memory-mapped Arrow cache) is page cache the kernel can drop at will.
"""

from __future__ import annotations

import argparse  # a measurement script outside the package, not an entry point
import json
import os
import random
import threading
import time

LIMIT_GIB = 6.0
PEAK = {"RssAnon": 0.0}  # highest anonymous RSS seen by the watcher since the last stage


def mem() -> dict[str, float]:
    """Current and peak RSS of this process in MiB, split into anonymous and file-backed."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def guard() -> None:
    """Kill this process if its RSS passes LIMIT_GIB (the machine is shared)."""

    def watch():
        while True:
            m = mem()
            PEAK["RssAnon"] = max(PEAK["RssAnon"], m["RssAnon"])
            if m["VmRSS"] > LIMIT_GIB * 1024:
                print(f"RSS above {LIMIT_GIB} GiB: abort", flush=True)
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def write_rows(path: str, n: int, seed: int = 0) -> None:
    """``n`` distinct triplet rows (~0.8 KB each): texts drawn from a pool, the row number in the query."""
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()
    rng = random.Random(seed)
    pool = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(4096)]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        for i in range(n):
            a, b = pool[i % 4096], pool[(i * 7 + 1) % 4096]
            row = {
                "query": f"{i} {a[:60]}",
                "pos": [a],
                "neg": [b, pool[(i * 13 + 2) % 4096], pool[(i + 99) % 4096]],
            }
            fh.write(json.dumps(row) + "\n")
    os.replace(path + ".tmp", path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--file", default="/tmp/big/train.jsonl")
    ap.add_argument("--out", default="experiments/data/large_data.json")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    guard()
    record: dict = {"rows": args.rows, "stages": []}

    def stage(name, t0):
        m = mem()
        peak = max(PEAK["RssAnon"], m["RssAnon"])
        PEAK["RssAnon"] = 0.0
        record["stages"].append(
            {"stage": name, "seconds": round(time.perf_counter() - t0, 1), **m, "PeakRssAnonInStage": peak}
        )
        print(record["stages"][-1], flush=True)

    t0 = time.perf_counter()
    if not os.path.exists(args.file):
        write_rows(args.file, args.rows)
    record["jsonl_bytes"] = os.path.getsize(args.file)
    stage("start (file written)", t0)

    from embedlight.data.datamodule import load_rows
    from embedlight.data.mixture import MixtureBatchSampler, MixtureDataset, Source

    stage("imports", t0)
    PEAK["RssAnon"] = 0.0
    t0 = time.perf_counter()
    rows, kind = load_rows([args.file])
    stage("load_rows (validate + Arrow cache, or reuse it)", t0)
    record["arrow_bytes"] = sum(os.path.getsize(f["filename"]) for f in rows.cache_files)
    record["memory_mapped"] = bool(rows.cache_files)
    source = Source("big", rows, kind)

    t0 = time.perf_counter()
    sampler = MixtureBatchSampler([source], args.batch_size)
    batches = sampler.global_batches(0)
    stage(f"global_batches(epoch 0): {len(batches)} batches of keys", t0)
    del batches

    t0 = time.perf_counter()
    it = iter(sampler)
    first = next(it)
    stage("sampler iterator (holds one epoch of keys)", t0)

    t0 = time.perf_counter()
    dataset = MixtureDataset([source], group_size=4)
    rng = random.Random(1)
    for _ in range(20_000):
        dataset[(0, 0, rng.randrange(len(source)))]
    stage("MixtureDataset: 20k random row reads", t0)
    del it, first

    t0 = time.perf_counter()
    lengths = MixtureBatchSampler([source], args.batch_size, group_by_length=True).lengths()
    stage("group_by_length: row_lengths (reads query+pos columns)", t0)
    del lengths

    write = {k: v for k, v in record.items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "w") as fh:
        json.dump(write, fh, indent=2)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
