"""``embedlight-filter``: drop noisy training pairs by a reference model's score (C-Pack) or by
consistency (E5: the positive must rank in the top-k among candidates).

Examples:
    embedlight-filter model=all-MiniLM-L6-v2 input=pairs.jsonl output=clean.jsonl threshold=0.43
    embedlight-filter model=outputs/run/export input=pairs.jsonl output=clean.jsonl top_k=2 corpus=corpus.jsonl

The dropped rows go to ``<output>.dropped.jsonl`` with their ``reason``; counts are printed and saved
to ``<output>.stats.json``; an existing output is refused unless ``overwrite=true``. The library call
is :func:`embedlight.engine.filtering.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.engine.filtering import run


@hydra.main(config_path="../conf", config_name="filter", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.engine.filtering.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
