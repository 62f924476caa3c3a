"""``embedlight-prepare``: build a dataset (``conf/dataset/``) into ``dataset.out_dir``.

Examples:
    embedlight-prepare dataset=bbc                                   # data/bbc: the demo's task
    embedlight-prepare dataset=bbc dataset.val_fraction=0.1 dataset.out_dir=data/bbc_val
    embedlight-prepare dataset=icl_english                           # data/icl_english (shared data)
    embedlight-prepare dataset=bbc overwrite=true                    # rebuild

A folder that is not empty is refused unless ``overwrite=true``. Training builds the datasets it
needs itself (``data=bbc``'s ``prepare`` step). The library call is
:func:`embedlight.data.builders.run.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.data.builders.run import run


@hydra.main(config_path="../conf", config_name="prepare", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.data.builders.run.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
