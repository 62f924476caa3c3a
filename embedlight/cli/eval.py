"""``embedlight-eval``: evaluate any saved model (an embedlight export, a sentence-transformers folder,
a run checkpoint, a bundled short name or a hub id) on the configured evaluators.

Examples:
    embedlight-eval model=outputs/demo/export evaluation=bbc
    embedlight-eval model=all-MiniLM-L6-v2 evaluation=stsb output=stsb.json
    embedlight-eval model=outputs/demo/checkpoints/last.ckpt evaluation=bbc

MTEB 2 is its own command, ``embedlight-mteb``. An existing ``output`` is refused unless
``overwrite=true``. The library call is :func:`embedlight.evaluation.run.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.evaluation.run import run


@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.evaluation.run.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
