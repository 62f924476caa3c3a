"""Print the before/after markdown tables from raw/<tag>_<preset>.json (run from the repo root)."""

from __future__ import annotations

import json
import os
import sys

RAW = os.path.join(os.path.dirname(__file__), "raw")
SKIP = ("_threshold", "ndcg@100", "recall@10", "mrr@100")


def load(tag: str, preset: str) -> dict[str, float]:
    path = os.path.join(RAW, f"{tag}_{preset}.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)["metrics"]


def table(preset: str, tags: list[str]) -> str:
    runs = [load(t, preset) for t in tags]
    keys = sorted(
        {k for r in runs for k in r if not k.endswith(SKIP)},
        key=lambda k: list(runs[0]).index(k) if k in runs[0] else 1e9,
    )
    lines = ["| metric | " + " | ".join(tags) + " |", "|---|" + "---|" * len(tags)]
    for key in keys:
        cells = [f"{r[key]:.4f}" if key in r else "-" for r in runs]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    tags = sys.argv[1:] or ["before", "after"]
    for preset in ("cmteb_local", "english_local", "passkey", "sts_robustness"):
        print(f"### {preset}\n\n{table(preset, tags)}\n")
