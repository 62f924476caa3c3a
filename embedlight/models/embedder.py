"""``Embedder(backbone, pooler, normalize)``: the text-to-vector model every recipe shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from embedlight.backbones.base import Backbone
from embedlight.data.limits import check_max_len
from embedlight.data.tokenize import tokenize
from embedlight.models.export import export_embedder
from embedlight.poolers.base import Pooler
from embedlight.prompts.instructions import render, resolve_template


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
        backbone: Backbone,
        pooler: Pooler,
        normalize: bool = True,
        query_instruction: str | None = None,
        doc_instruction: str | None = None,
        instruction_fields: Mapping[str, str] | None = None,
        max_length: int = 512,
    ) -> None:
        super().__init__()
        check_max_len("embedder.max_length", max_length, backbone.tokenizer, int(backbone.append_eos))
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
        eos = self.backbone.append_eos if append_eos is None else append_eos
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
        """Write a folder loadable by ``transformers`` and ``sentence-transformers``; see
        :func:`embedlight.models.export.export_embedder`. Returns ``directory``."""
        return export_embedder(self, directory, extra)

    # --- Matryoshka (Kusupati et al., 2022): nested prefixes of the embedding -----------------------

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
