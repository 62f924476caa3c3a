"""Logger factories used by ``conf/logger``."""

from __future__ import annotations

import logging
import netrc
import os
import re
from typing import Any

log = logging.getLogger(__name__)


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_logger(
    project: str = "embedlight",
    name: str | None = None,
    save_dir: str = ".",
    mode: str | None = None,
    log_export: bool = False,
    **kwargs: Any,
):
    """A Lightning ``WandbLogger`` that runs offline when no API key is configured.

    Args:
        project: W&B project.
        name: Run name.
        save_dir: Folder for the local run files.
        mode: ``online`` / ``offline``; None picks online only when a key is found
            (``WANDB_API_KEY`` or ``~/.netrc``), unless ``WANDB_MODE`` says otherwise. The key itself
            is never logged.
        log_export: Upload the run's export folder as a ``model`` artifact when the run ends.
        **kwargs: Passed to ``WandbLogger``.
    """
    from lightning.pytorch.loggers import WandbLogger

    mode = mode or os.environ.get("WANDB_MODE") or ("online" if _has_wandb_key() else "offline")
    if mode == "offline":
        log.info("wandb: no API key found, logging offline to %s (sync later with `wandb sync`)", save_dir)
    os.makedirs(save_dir, exist_ok=True)
    logger = WandbLogger(project=project, name=name, save_dir=save_dir, offline=mode == "offline", **kwargs)
    logger.log_export = log_export
    return logger


SECRET_KEY = re.compile(
    r"(^|_)(api_?key|secret|password|auth_token|access_token|hf_token)$|^token$", re.IGNORECASE
)


def redact(value: Any) -> Any:
    """A copy of a nested config whose string values under secret-looking keys (``api_key``,
    ``wandb_api_key``, ``hf_token``, ``password``, ...) read ``"***"``; ``pad_token_id`` etc. are kept."""
    if isinstance(value, dict):
        return {
            k: "***" if SECRET_KEY.search(str(k)) and isinstance(v, str) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def log_config(loggers: Any, cfg: Any) -> None:
    """Send the resolved run config (secret-looking values redacted) to every logger's hyperparameters."""
    from omegaconf import OmegaConf

    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that only resolves inside a Hydra job (e.g. ${hydra:...})
        config = OmegaConf.to_container(cfg, resolve=False)
    config = redact(config)
    for logger in loggers:
        logger.log_hyperparams(config)


def finish(loggers: Any, export_dir: str | None = None) -> None:
    """End the wandb run of every ``WandbLogger`` (flushes the offline files; the next run in the same
    process, e.g. the next trial of a sweep, then starts a new wandb run instead of reusing this one).

    Loggers made with ``log_export=True`` first log ``export_dir`` as a ``model`` artifact.
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if not isinstance(logger, WandbLogger) or logger._experiment is None:
            continue
        if export_dir and getattr(logger, "log_export", False):
            import wandb

            artifact = wandb.Artifact(f"export-{logger.experiment.id}", type="model")
            artifact.add_dir(export_dir)
            logger.experiment.log_artifact(artifact)
        logger.experiment.finish()
