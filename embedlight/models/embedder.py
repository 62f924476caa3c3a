"""``Embedder(backbone, pooler, normalize)``: the text-to-vector model every recipe shares."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from embedlight.data.limits import check_max_len
from embedlight.data.tokenize import tokenize
from embedlight.prompts.instructions import render, resolve_template
from embedlight.utils.io import write_json

# the padding side written into exported tokenizers (what sentence-transformers' poolers assume)
EXPORT_PADDING_SIDE = "right"


class Embedder(nn.Module):
    """Composes a backbone and a pooler, optionally L2-normalising the result.

    Args:
        backbone: A registered backbone (hidden states + tokenizer).
        pooler: A registered pooler; it is bound to the backbone's width here.
        normalize: L2-normalise embeddings (cosine similarity).
        query_instruction: Default query prefix at inference/export (template name or literal).
        doc_instruction: Default document prefix ("" = raw).
        instruction_fields: Fields for templates such as ``e5_mistral``'s ``{task}``.
        max_length: Token limit at inference and in the sentence-transformers export.
    """

    def __init__(
        self,
        backbone: nn.Module,
        pooler: nn.Module,
        normalize: bool = True,
        query_instruction: str | None = None,
        doc_instruction: str | None = None,
        instruction_fields: Mapping[str, str] | None = None,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        eos = int(bool(getattr(backbone, "append_eos", False)))
        check_max_len("embedder.max_length", max_length, getattr(backbone, "tokenizer", None), eos)
        self.backbone = backbone
        self.pooler = pooler.bind(backbone.hidden_size)
        self.normalize = normalize
        fields = dict(instruction_fields or {})
        self.prompts = {
            "query": render(resolve_template(query_instruction, "query"), fields),
            "document": render(resolve_template(doc_instruction, "document"), fields),
        }
        self.max_length = max_length
        self.trained_dims: list[int] | None = None  # Matryoshka prefixes trained (set by the module)

    @property
    def tokenizer(self):
        """The backbone's tokenizer."""
        return self.backbone.tokenizer

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self.pooler.out_dim

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Embed a tokenised batch (``input_ids``, ``attention_mask``, optional ``instruction_mask``) -> (B, D)."""
        hidden = self.backbone(features["input_ids"], features["attention_mask"])  # (B, L, H)
        emb = self.pooler(hidden, features["attention_mask"], features.get("instruction_mask"))  # (B, D)
        return F.normalize(emb, dim=-1) if self.normalize else emb

    @torch.no_grad()
    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: str = "query",
        instruction: str | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> torch.Tensor:
        """Embed raw texts (the evaluation ``TextEncoder`` protocol).

        Args:
            texts: Texts to embed.
            kind: ``query`` or ``document``: picks the default instruction.
            instruction: Prefix override; None uses the default for ``kind``, "" none.
            batch_size: Texts per forward pass (sorted by length to cut padding).
            show_progress: Show a progress bar.

        Returns:
            (N, D) float32 embeddings on the CPU, in input order.
        """
        prefix = self.prompts.get(kind, "") if instruction is None else instruction
        return self.embed_texts(
            texts,
            [prefix] * len(texts),
            batch_size=batch_size,
            show_progress=show_progress,
            desc=f"encode {kind}",
        )

    @torch.no_grad()
    def embed_texts(
        self,
        texts: Sequence[str],
        prefixes: Sequence[str],
        *,
        max_length: int | None = None,
        append_eos: bool | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
        desc: str = "encode",
    ) -> torch.Tensor:
        """Embed ``prefixes[i] + texts[i]`` in length-sorted batches, in eval mode, without autocast.

        Args:
            texts: Texts to embed.
            prefixes: One instruction/prompt per text.
            max_length: Token limit (default: ``self.max_length``).
            append_eos: Append [EOS] (default: the backbone's ``append_eos``).
            batch_size: Texts per forward pass.
            show_progress: Show a progress bar.
            desc: Progress-bar label.

        Returns:
            (N, D) float32 embeddings on the CPU, in input order.
        """
        max_length = max_length or self.max_length
        eos = getattr(self.backbone, "append_eos", False) if append_eos is None else append_eos
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        order = sorted(range(len(texts)), key=lambda i: -len(prefixes[i]) - len(texts[i]))
        out = torch.empty(len(texts), self.dim)  # (N, D)
        steps = range(0, len(order), batch_size)
        for start in tqdm(steps, desc=desc, disable=not show_progress, leave=False):
            idx = order[start : start + batch_size]
            batch = tokenize(
                self.tokenizer, [texts[i] for i in idx], [prefixes[i] for i in idx], max_length, eos
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, enabled=False):
                out[idx] = self(batch).float().cpu()  # (b, D)
        self.train(was_training)
        return out

    def export(self, directory: str, extra: Mapping[str, Any] | None = None) -> str:
        """Write a folder loadable by ``transformers.AutoModel`` and ``sentence_transformers.SentenceTransformer``.

        The backbone goes to the root (safetensors + tokenizer); sentence-transformers' module files
        reproduce this pooler, projection head, normalisation and the default prompts.

        The saved tokenizer pads on the right (:data:`EXPORT_PADDING_SIDE`) whatever side training
        used: older sentence-transformers releases read ``cls``, ``weightedmean`` and
        ``include_prompt=False`` as if rows were right-padded (6.2, installed here, handles both), and a
        right-padded row is what every release handles. Embeddings do not depend on the side: the poolers locate real tokens
        from the attention mask, and decoders count positions over real tokens only (see
        ``HFDecoder.forward``). The training side is recorded in ``embedlight.json``.

        Returns:
            ``directory``.
        """
        os.makedirs(directory, exist_ok=True)
        self.backbone.save_pretrained(directory, padding_side=EXPORT_PADDING_SIDE)
        mode = getattr(self.pooler, "st_pooling_mode", None)
        if mode is None:
            raise ValueError(
                f"{type(self.pooler).__name__} has no sentence-transformers pooling mode to export"
            )
        hidden = self.backbone.hidden_size
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
                "include_prompt": self.pooler.st_include_prompt,
            },
        )
        linears = [m for m in self.pooler.head.modules() if isinstance(m, nn.Linear)]
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
        if self.normalize:
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
            {"max_seq_length": self.max_length, "do_lower_case": False},
        )
        write_json(
            os.path.join(directory, "config_sentence_transformers.json"),
            {
                "prompts": self.prompts,
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
                **self._dims_metadata(),  # informational: sentence-transformers ignores it
            },
        )
        write_json(
            os.path.join(directory, "embedlight.json"),
            {
                "pooler": type(self.pooler).__name__,
                "pooling_mode": mode,
                "normalize": self.normalize,
                "exclude_instruction": self.pooler.exclude_instruction,
                "prompts": self.prompts,
                "append_eos": bool(getattr(self.backbone, "append_eos", False)),
                "padding_side": EXPORT_PADDING_SIDE,
                "training_padding_side": self.backbone.padding_side,
                "max_length": self.max_length,
                **self._dims_metadata(),
                **dict(extra or {}),
            },
        )
        return directory

    # --- Matryoshka (Kusupati et al., 2022): nested prefixes of the embedding -----------------------

    def _dims_metadata(self) -> dict[str, Any]:
        """Export metadata of the trained prefix sizes (empty when only the full vector was trained)."""
        return {"matryoshka_dims": list(self.trained_dims)} if self.trained_dims else {}

    def eval_dims(self) -> list[int]:
        """Trained prefix sizes smaller than the full embedding, largest first (evaluated separately)."""
        return sorted({d for d in self.trained_dims or () if d < self.dim}, reverse=True)

    def truncated(self, dim: int) -> TruncatedEncoder:
        """This embedder seen through its first ``dim`` coordinates (re-normalised if ``normalize``)."""
        return TruncatedEncoder(self, dim)


class TruncatedEncoder:
    """An :class:`Embedder` whose outputs are cut to their first ``dim`` coordinates and re-normalised.

    What a Matryoshka model's user does at inference (sentence-transformers' ``truncate_dim``). It
    implements ``encode`` and ``embed_texts`` (used by the evaluators) and passes everything else on.

    Args:
        embedder: The full model.
        dim: Prefix size, at most ``embedder.dim``.
    """

    def __init__(self, embedder: Embedder, dim: int) -> None:
        if not 0 < dim <= embedder.dim:
            raise ValueError(f"truncation dim must be in 1..{embedder.dim}, got {dim}")
        self.embedder = embedder
        self.dim = dim

    def _cut(self, emb: torch.Tensor) -> torch.Tensor:
        emb = emb[:, : self.dim]  # (N, dim)
        return F.normalize(emb, dim=-1) if self.embedder.normalize else emb

    def encode(self, texts: Sequence[str], **kwargs: Any) -> torch.Tensor:
        """``Embedder.encode`` truncated, (N, dim)."""
        return self._cut(self.embedder.encode(texts, **kwargs))

    def embed_texts(self, texts: Sequence[str], prefixes: Sequence[str], **kwargs: Any) -> torch.Tensor:
        """``Embedder.embed_texts`` truncated, (N, dim)."""
        return self._cut(self.embedder.embed_texts(texts, prefixes, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)
