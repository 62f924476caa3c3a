"""Backbones: registered in the ``backbone`` group (see :mod:`embedlight.registry`)."""

from embedlight.backbones.base import Backbone
from embedlight.backbones.bundled import BUNDLED
from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.backbones.resolve import resolve_pretrained

__all__ = ["Backbone", "HFEncoder", "BUNDLED", "resolve_pretrained"]
