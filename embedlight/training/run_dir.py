"""The output folder of a training run: never replace an existing run without being told to.

``embedlight-train`` into a folder that already holds a run (checkpoints, an export, metrics or a
saved config) stops with :class:`OutputExistsError` unless ``resume=auto`` (or a checkpoint path)
continues it or ``overwrite=true`` replaces it; the check is the one every command uses
(:func:`embedlight.utils.outputs.guard_output`), told what in a folder marks a run. Hydra would write ``.hydra/`` into the folder before
any of our code runs, so ``train.yaml`` sets ``hydra.output_subdir: null`` and
:func:`save_hydra_config` writes the same three files after the check.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any

from omegaconf import DictConfig, OmegaConf

from embedlight.utils.io import write_text
from embedlight.utils.outputs import OutputExistsError, guard_output

__all__ = [
    "OutputExistsError",
    "guard_output_dir",
    "run_markers",
    "save_hydra_config",
    "start_run",
    "sweep_objective",
]

log = logging.getLogger("embedlight.train")

HYDRA_SUBDIR = ".hydra"  # Hydra's default output_subdir
_REPLACED = ("checkpoints", "export", "metrics.json")  # what overwrite=true removes


def _launcher_process() -> bool:
    """False in the other processes of a multi-process run (Lightning's DDP children, torchrun, SLURM
    tasks): only the first process checks the folder and writes ``.hydra/``, before the others start
    or while they wait for it."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def run_markers(out: str, include_config: bool = True) -> list[str]:
    """What in ``out`` shows that a run already used it (relative paths; empty for a fresh folder)."""
    found = []
    if glob.glob(os.path.join(out, "checkpoints", "*.ckpt")):
        found.append("checkpoints/*.ckpt")
    if os.path.isdir(os.path.join(out, "export")) and os.listdir(os.path.join(out, "export")):
        found.append("export/")
    if os.path.isfile(os.path.join(out, "metrics.json")):
        found.append("metrics.json")
    if include_config and os.path.isfile(os.path.join(out, HYDRA_SUBDIR, "config.yaml")):
        found.append(f"{HYDRA_SUBDIR}/config.yaml")
    return found


def guard_output_dir(
    out: str, resume: Any = None, overwrite: bool = False, include_config: bool = True
) -> None:
    """Refuse to train into a folder holding a run, unless resuming it or told to overwrite it.

    Args:
        out: ``paths.output_dir``.
        resume: ``resume`` (``auto``, a checkpoint path, or None).
        overwrite: ``overwrite=true``: remove the old run's checkpoints, export and metrics first, so
            that nothing of it can be mistaken for the new run's (a later ``resume=auto`` included).
        include_config: Count a saved ``.hydra/config.yaml`` as a run (False once this run wrote its own).

    Raises:
        OutputExistsError: ``out`` holds a run and neither ``resume`` nor ``overwrite`` is set.

    Only the first process of a multi-process run checks (see :func:`_launcher_process`).
    """
    if not _launcher_process():
        return
    if resume not in (None, "", False):
        return
    out = os.path.abspath(os.path.expanduser(str(out)))
    guard_output(
        out,
        overwrite,
        key="paths.output_dir",
        found=run_markers(out, include_config),
        remove=[name for name in _REPLACED if os.path.lexists(os.path.join(out, name))],
        what="a run",
        alternatives="continue it with resume=auto",
    )


def start_run(cfg: DictConfig) -> None:
    """What ``embedlight-train`` does under Hydra before :func:`embedlight.training.run.run`: refuse an
    existing run (before anything is written, so its ``.hydra/`` survives a refused start), write this
    run's ``.hydra/``, and log the config and the hardware ``hardware=auto`` picked."""
    guard_output_dir(cfg.paths.output_dir, cfg.get("resume"), cfg.get("overwrite", False))
    save_hydra_config(cfg)
    log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=False))
    t = cfg.trainer
    log.info("hardware: accelerator=%s devices=%s precision=%s", t.accelerator, t.devices, t.precision)


def sweep_objective(result: dict[str, Any]) -> float | None:
    """The value a Hydra sweep optimises: the monitored validation metric of ``run``'s result.

    Raises:
        ValueError: In a multirun (``-m``) without a monitored metric: a sweep would have nothing to compare.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    objective = result["objective"]
    if objective is None and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ValueError(
            "a sweep needs a monitored metric: set validation (e.g. validation=bbc_val) and monitor"
        )
    return objective


def save_hydra_config(cfg: DictConfig) -> None:
    """Write ``.hydra/{config,hydra,overrides}.yaml`` into the Hydra run folder, as Hydra itself would."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or not _launcher_process():
        return
    hydra_cfg = HydraConfig.get()
    folder = os.path.join(hydra_cfg.runtime.output_dir, HYDRA_SUBDIR)
    os.makedirs(folder, exist_ok=True)
    files = {
        "config.yaml": cfg,
        "hydra.yaml": OmegaConf.create({"hydra": hydra_cfg}),
        "overrides.yaml": hydra_cfg.overrides.task,
    }
    for name, node in files.items():
        write_text(os.path.join(folder, name), OmegaConf.to_yaml(node, resolve=False))
