"""``embedlight-train``: compose a Hydra config, train, evaluate before/after, export.

Examples:
    embedlight-train experiment=quickstart
    embedlight-train experiment=quickstart data.train_files=[my.jsonl] paths.output_dir=runs/mine
    embedlight-train experiment=quickstart paths.output_dir=runs/mine resume=auto
    embedlight-train experiment=quickstart validation=bbc_val        # best checkpoint by val nDCG@10
    embedlight-train -m experiment=quickstart validation=bbc_val hparams_search=lr_temperature
    embedlight-train experiment=quickstart paths.output_dir=runs/mine overwrite=true
"""

from __future__ import annotations

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from embedlight.registry import _load_all
from embedlight.training.run import run
from embedlight.training.run_dir import guard_output_dir, save_hydra_config

log = logging.getLogger("embedlight.train")
_load_all()  # registered components must be in the ConfigStore before Hydra composes


@hydra.main(config_path="../conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the monitored validation metric (what an Optuna sweep optimises)."""
    # before anything is written: an existing run's .hydra/ must survive a refused start
    guard_output_dir(cfg.paths.output_dir, cfg.get("resume"), cfg.get("overwrite", False))
    save_hydra_config(cfg)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=False))
    t = cfg.trainer  # hardware=auto picks these at run time: say what it picked
    log.info("hardware: accelerator=%s devices=%s precision=%s", t.accelerator, t.devices, t.precision)
    objective = run(cfg)["objective"]
    if objective is None and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ValueError(
            "a sweep needs a monitored metric: set validation (e.g. validation=bbc_val) and monitor"
        )
    return objective


if __name__ == "__main__":
    main()
