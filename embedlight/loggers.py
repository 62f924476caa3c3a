"""Logger factories used by ``conf/logger``."""

from __future__ import annotations

import logging
import netrc
import os
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
    **kwargs: Any,
):
    """A Lightning ``WandbLogger`` that runs offline when no API key is configured.

    Args:
        project: W&B project.
        name: Run name.
        save_dir: Folder for the local run files.
        mode: ``online`` / ``offline``; None picks online only when a key is found
            (``WANDB_API_KEY`` or ``~/.netrc``). The key itself is never logged.
        **kwargs: Passed to ``WandbLogger``.
    """
    from lightning.pytorch.loggers import WandbLogger

    mode = mode or ("online" if _has_wandb_key() else "offline")
    if mode == "offline":
        log.info("wandb: no API key found, logging offline to %s (sync later with `wandb sync`)", save_dir)
    os.makedirs(save_dir, exist_ok=True)
    return WandbLogger(project=project, name=name, save_dir=save_dir, offline=mode == "offline", **kwargs)
