"""Write an :class:`~embedlight.models.embedder.Embedder` as a folder that ``transformers.AutoModel`` and
``sentence_transformers.SentenceTransformer`` both load (``embedlight.json`` records the rest)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from safetensors.torch import save_file
from torch import nn

from embedlight.utils.io import write_json

if TYPE_CHECKING:  # the embedder calls this module; no import at run time
    from embedlight.models.embedder import Embedder

# the padding side written into exported tokenizers (what sentence-transformers' poolers assume)
EXPORT_PADDING_SIDE = "right"


def export_embedder(embedder: Embedder, directory: str, extra: Mapping[str, Any] | None = None) -> str:
    """Write a folder loadable by ``transformers.AutoModel`` and ``sentence_transformers.SentenceTransformer``.

    The backbone goes to the root (safetensors + tokenizer); sentence-transformers' module files
    reproduce this pooler, projection head, normalisation and the default prompts.

    The saved tokenizer pads on the right (:data:`EXPORT_PADDING_SIDE`) whatever side training
    used: older sentence-transformers releases read ``cls``, ``weightedmean`` and
    ``include_prompt=False`` as if rows were right-padded (6.2, installed here, handles both), and a
    right-padded row is what every release handles. Embeddings do not depend on the side: the
    poolers locate real tokens from the attention mask, and decoders count positions over real
    tokens only (see ``HFDecoder.forward``). The training side is recorded in ``embedlight.json``.

    Args:
        embedder: The model to write.
        directory: Output folder (created).
        extra: More fields for ``embedlight.json`` (the recipe, an ICL template, ...).

    Returns:
        ``directory``.
    """
    os.makedirs(directory, exist_ok=True)
    embedder.backbone.save_pretrained(directory, padding_side=EXPORT_PADDING_SIDE)
    mode = embedder.pooler.st_pooling_mode
    if mode is None:
        raise ValueError(
            f"{type(embedder.pooler).__name__} has no sentence-transformers pooling mode to export"
        )
    hidden = embedder.backbone.hidden_size
    modules: list[dict[str, Any]] = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    write_json(
        os.path.join(directory, "1_Pooling", "config.json"),
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": mode == "cls",
            "pooling_mode_mean_tokens": mode == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": mode == "weightedmean",
            "pooling_mode_lasttoken": mode == "lasttoken",
            "include_prompt": embedder.pooler.st_include_prompt,
        },
    )
    linears = [m for m in embedder.pooler.head.modules() if isinstance(m, nn.Linear)]
    for j, layer in enumerate(linears):
        last = j == len(linears) - 1
        idx = len(modules)
        path = f"{idx}_Dense"
        act = "torch.nn.modules.linear.Identity" if last else "torch.nn.modules.activation.GELU"
        write_json(
            os.path.join(directory, path, "config.json"),
            {
                "in_features": layer.in_features,
                "out_features": layer.out_features,
                "bias": layer.bias is not None,
                "activation_function": act,
            },
        )
        tensors = {"linear.weight": layer.weight.detach().float().contiguous().cpu()}
        if layer.bias is not None:
            tensors["linear.bias"] = layer.bias.detach().float().contiguous().cpu()
        save_file(tensors, os.path.join(directory, path, "model.safetensors"))
        modules.append(
            {"idx": idx, "name": str(idx), "path": path, "type": "sentence_transformers.models.Dense"}
        )
    if embedder.normalize:
        idx = len(modules)
        os.makedirs(os.path.join(directory, f"{idx}_Normalize"), exist_ok=True)
        modules.append(
            {
                "idx": idx,
                "name": str(idx),
                "path": f"{idx}_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    write_json(os.path.join(directory, "modules.json"), modules)
    write_json(
        os.path.join(directory, "sentence_bert_config.json"),
        {"max_seq_length": embedder.max_length, "do_lower_case": False},
    )
    write_json(
        os.path.join(directory, "config_sentence_transformers.json"),
        {
            "prompts": embedder.prompts,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
            **_dims_metadata(embedder),  # informational: sentence-transformers ignores it
        },
    )
    write_json(
        os.path.join(directory, "embedlight.json"),
        {
            "pooler": type(embedder.pooler).__name__,
            "pooling_mode": mode,
            "normalize": embedder.normalize,
            "exclude_instruction": embedder.pooler.exclude_instruction,
            "prompts": embedder.prompts,
            "append_eos": bool(embedder.backbone.append_eos),
            "padding_side": EXPORT_PADDING_SIDE,
            "training_padding_side": embedder.backbone.padding_side,
            "max_length": embedder.max_length,
            **_dims_metadata(embedder),
            **dict(extra or {}),
        },
    )
    return directory


def _dims_metadata(embedder: Embedder) -> dict[str, Any]:
    """Export metadata of the trained prefix sizes (empty when only the full vector was trained)."""
    return {"matryoshka_dims": list(embedder.trained_dims)} if embedder.trained_dims else {}
