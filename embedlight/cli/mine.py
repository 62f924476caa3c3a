"""``embedlight-mine``: mine hard negatives for a FlagEmbedding-schema training file with any model.

Examples:
    embedlight-mine model=all-MiniLM-L6-v2 input=train.jsonl output=train.mined.jsonl
    embedlight-mine model=outputs/run/export input=train.jsonl corpus=corpus.jsonl output=mined.jsonl \\
        negatives=7 range_start=10 range_end=100 relative_margin=0.95 index.kind=hnsw
    embedlight-mine model=outputs/run/checkpoints/last.ckpt input=train.jsonl output=mined.jsonl \\
        store.path=cache/corpus.f16 store.dtype=float16

Counts, timings and peak memory go to ``<output>.stats.json``; an existing output is refused unless
``overwrite=true``. The library call is :func:`embedlight.engine.mining.run.run`; the recipe and its
sources (C-Pack, Arctic-Embed) are in :mod:`embedlight.engine.mining.negatives`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.engine.mining.run import run


@hydra.main(config_path="../conf", config_name="mine", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.engine.mining.run.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
