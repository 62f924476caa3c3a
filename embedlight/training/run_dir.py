"""The output folder of a training run: never replace an existing run without being told to.

``embedlight-train`` into a folder that already holds a run (checkpoints, an export, metrics or a
saved config) stops with :class:`OutputExistsError` unless ``resume=auto`` (or a checkpoint path)
continues it or ``overwrite=true`` replaces it. Hydra would write ``.hydra/`` into the folder before
any of our code runs, so ``train.yaml`` sets ``hydra.output_subdir: null`` and
:func:`save_hydra_config` writes the same three files after the check.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
from typing import Any

from omegaconf import DictConfig, OmegaConf

from embedlight.utils.io import write_text

log = logging.getLogger(__name__)

HYDRA_SUBDIR = ".hydra"  # Hydra's default output_subdir
_REPLACED = ("checkpoints", "export", "metrics.json")  # what overwrite=true removes


def _launcher_process() -> bool:
    """False in the other processes of a multi-process run (Lightning's DDP children, torchrun, SLURM
    tasks): only the first process checks the folder and writes ``.hydra/``, before the others start
    or while they wait for it."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


class OutputExistsError(FileExistsError):
    """The output folder already holds a run and neither ``resume`` nor ``overwrite`` was given."""


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
    out = os.path.abspath(os.path.expanduser(str(out)))
    found = run_markers(out, include_config)
    if not found or resume not in (None, "", False):
        return
    if overwrite:
        for name in _REPLACED:
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
        log.warning("overwrite=true: replacing the run in %s (removed its %s)", out, ", ".join(_REPLACED))
        return
    raise OutputExistsError(
        f"{out} already holds a run ({', '.join(found)}). Continue it with resume=auto, replace it with "
        "overwrite=true (deletes its checkpoints, export and metrics), or choose another paths.output_dir."
    )


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
