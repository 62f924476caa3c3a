"""Load any model behind the evaluators' ``encode(texts, kind=, instruction=)`` protocol: an export or
sentence-transformers folder, a run checkpoint (``.ckpt``), a bundled name or a hub id."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from embedlight.prompts.instructions import resolve_template


def run_dir_of(ckpt_path: str) -> str:
    """The run folder of a Lightning checkpoint: the first ancestor holding ``.hydra/config.yaml``."""
    folder = os.path.dirname(os.path.abspath(ckpt_path))
    for _ in range(4):
        if os.path.isfile(os.path.join(folder, ".hydra", "config.yaml")):
            return folder
        folder = os.path.dirname(folder)
    raise FileNotFoundError(
        f"{ckpt_path}: no .hydra/config.yaml in its run folder (a checkpoint of an embedlight-train run "
        "is expected; for other models pass an export folder or a model name)"
    )


def load_checkpoint_embedder(ckpt_path: str, device: str = "cpu") -> tuple[Any, Mapping[str, Any]]:
    """Rebuild the :class:`~embedlight.models.embedder.Embedder` of a run from its Hydra config and checkpoint.

    The backbone, pooler and embedder are built from ``<run>/.hydra/config.yaml`` by
    :func:`~embedlight.models.build.build_embedder`, as training built them; the weights come from
    the checkpoint's ``state_dict`` (``embedder.*``), read with ``torch.load(weights_only=True)``.

    Returns:
        ``(embedder, data_config)``: the model in eval mode and the run's ``data`` section (its query
        instruction is what the model was trained with).
    """
    from omegaconf import OmegaConf

    from embedlight.models.build import build_embedder

    cfg = OmegaConf.load(os.path.join(run_dir_of(ckpt_path), ".hydra", "config.yaml"))
    embedder = build_embedder(cfg)
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    weights = {k[len("embedder.") :]: v for k, v in state.items() if k.startswith("embedder.")}
    if not weights:
        raise KeyError(f"{ckpt_path}: no 'embedder.*' weights in the checkpoint's state_dict")
    missing, unexpected = embedder.load_state_dict(weights, strict=False)
    if unexpected:
        raise KeyError(f"{ckpt_path}: unexpected weights {unexpected[:5]}")
    trained = [k for k in missing if "lora" in k]  # frozen base weights may be left out (ICL runs)
    if trained:
        raise KeyError(f"{ckpt_path}: missing trained weights {trained[:5]}")
    try:
        data = OmegaConf.to_container(cfg.get("data") or {}, resolve=True)
    except Exception:  # an interpolation that only resolves inside the training run
        data = OmegaConf.to_container(cfg.get("data") or {}, resolve=False)
    return embedder.to(device).eval(), data


@dataclass
class LoadedModel:
    """A model ready to encode, with what it was trained with.

    Attributes:
        encoder: Has ``encode(texts, *, kind, instruction, batch_size, show_progress) -> (N, D)``.
        prompts: Saved default prefixes ``{"query": ..., "document": ...}``.
        icl: The export's ICL template (``{example, query, separator}``) or None.
        fields: Instruction fields of the training data (``{task}``, ...).
        name: What was loaded (for fingerprints and logs).
    """

    encoder: Any
    prompts: dict[str, str] = field(default_factory=dict)
    icl: dict[str, str] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    name: str = ""


def load_model(name: str, device: str | None = None, trust_remote_code: bool = False) -> LoadedModel:
    """Load an export / sentence-transformers folder, a run checkpoint (``.ckpt``), a bundled name or a hub id."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).endswith(".ckpt"):
        embedder, data = load_checkpoint_embedder(name, device)
        prompts = dict(embedder.prompts)
        query = data.get("query_instruction")
        fields = dict(data.get("instruction_fields") or {})
        if isinstance(query, str):  # the training data's template wins (rendered per row later)
            prompts["query"] = resolve_template(query, "query")
        return LoadedModel(embedder, prompts, None, fields, os.path.abspath(name))
    from embedlight.backbones.resolve import resolve_pretrained
    from embedlight.models.sentence_transformer import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(name, device, trust_remote_code)
    prompts = dict(enc.model.prompts or {})
    icl = None
    folder = resolve_pretrained(name)
    meta_path = os.path.join(folder, "embedlight.json") if os.path.isdir(folder) else ""
    if meta_path and os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        prompts = {**prompts, **(meta.get("prompts") or {})}
        icl = meta.get("icl")
    return LoadedModel(enc, prompts, icl, {}, str(name))
