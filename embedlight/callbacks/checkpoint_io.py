"""Checkpoint I/O that never leaves a half-written file behind."""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes to ``<path>.tmp``, fsyncs, then renames over ``<path>``; loads with ``weights_only=True``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str, storage_options: Any | None = None
    ) -> None:
        path = str(path)
        if get_filesystem(path).protocol not in ("file", ("file", "local")) and "://" in path:
            return super().save_checkpoint(checkpoint, path, storage_options)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as fh:
            torch.save(checkpoint, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load_checkpoint(
        self, path: str, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict:
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)
