"""``embedlight-train``: compose a Hydra config, train, evaluate before/after, export.

Examples:
    embedlight-train experiment=quickstart
    embedlight-train experiment=quickstart data.train_files=[my.jsonl] paths.output_dir=runs/mine
    embedlight-train experiment=quickstart paths.output_dir=runs/mine resume=auto
    embedlight-train experiment=quickstart validation=bbc_val        # best checkpoint by val nDCG@10
    embedlight-train -m experiment=quickstart validation=bbc_val hparams_search=lr_temperature
    embedlight-train experiment=quickstart paths.output_dir=runs/mine overwrite=true

A folder that already holds a run is refused unless ``resume=auto`` (continue it) or ``overwrite=true``
(replace it). The library call is :func:`embedlight.training.run.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.registry import _load_all
from embedlight.training.run import run
from embedlight.training.run_dir import start_run, sweep_objective

_load_all()  # registered components must be in the ConfigStore before Hydra composes


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point over :func:`embedlight.training.run.run`; returns the monitored validation
    metric (what an Optuna sweep optimises)."""
    start_run(cfg)  # refuse an existing run, write .hydra/, log the config
    return sweep_objective(run(cfg))


if __name__ == "__main__":
    main()
