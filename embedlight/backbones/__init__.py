"""Backbones: registered in the ``backbone`` group (see :mod:`embedlight.registry`)."""

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.backbones.resolve import BUNDLED, resolve_pretrained

__all__ = ["HFEncoder", "BUNDLED", "resolve_pretrained"]
