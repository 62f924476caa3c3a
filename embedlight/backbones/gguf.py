"""Dequantize a GGUF checkpoint once into a cached safetensors folder that ``from_pretrained`` loads.

Used by the bundled SmolLM2 (:mod:`embedlight.backbones.bundled`), which ships as a Q4_1 GGUF: it is
read with transformers' ``gguf_file=`` loader and written as float32 safetensors under
``$EMBEDLIGHT_CACHE`` (default ``~/.cache/embedlight``). torch and transformers are imported only
when a file is converted, so resolving names stays cheap.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

log = logging.getLogger(__name__)


def cache_dir() -> str:
    """Folder for dequantized GGUF checkpoints (``$EMBEDLIGHT_CACHE`` or ``~/.cache/embedlight``)."""
    return os.path.expanduser(os.environ.get("EMBEDLIGHT_CACHE", "~/.cache/embedlight"))


def gguf_to_safetensors(folder: str, gguf_file: str, target: str) -> str:
    """Dequantize ``folder/gguf_file`` once into a safetensors checkpoint at ``target`` (atomic).

    Args:
        folder: Folder holding the GGUF file.
        gguf_file: File name of the GGUF checkpoint.
        target: Output folder; returned as is when it already holds a checkpoint.

    Returns:
        ``target``.
    """
    if os.path.isfile(os.path.join(target, "model.safetensors")) and os.path.isfile(
        os.path.join(target, "tokenizer_config.json")
    ):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("backbone: dequantizing %s once into %s", gguf_file, target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.dirname(target))
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
        _save_dequantized(model, tmp)
        tok.save_pretrained(tmp)
        if os.path.isdir(target):  # a concurrent writer finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _save_dequantized(model: Any, directory: str) -> None:
    """Write a GGUF-loaded model as plain safetensors (transformers refuses ``save_pretrained`` on it)."""
    from safetensors.torch import save_file

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(directory)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(directory)
    state, seen = {}, set()
    for key, value in model.state_dict().items():
        if value.data_ptr() in seen:  # tied weights (lm_head = embed_tokens) are stored once
            continue
        seen.add(value.data_ptr())
        state[key] = value.detach().contiguous()
    save_file(state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
