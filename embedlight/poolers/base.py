"""Shared pooler machinery: the pooling mask and the optional projection head."""

from __future__ import annotations

import torch
from torch import nn


class Pooler(nn.Module):
    """Base class of every pooler: subclasses implement :meth:`pool`.

    Args:
        exclude_instruction: Drop instruction/prompt tokens (and the special tokens before them) from
            the pooled set, as INSTRUCTOR does; only poolers that average over tokens are affected.
        projection: ``None``, ``"linear"`` or ``"mlp"`` (Linear-GELU-Linear) head after pooling.
        projection_dim: Output size of the head; defaults to the backbone's hidden size.
    """

    # name of the sentence-transformers Pooling mode this pooler exports as (None: not exportable)
    st_pooling_mode: str | None = None
    # whether pooling reads the pooling mask (so that ``exclude_instruction`` changes the result);
    # single-token poolers ([CLS], last token) pick their token from the attention mask alone
    averages_tokens: bool = True

    def __init__(
        self,
        exclude_instruction: bool = False,  # INSTRUCTOR: pool over text tokens only
        projection: str | None = None,  # None | linear | mlp
        projection_dim: int | None = None,  # head output size; None = hidden size
    ) -> None:
        super().__init__()
        if projection not in (None, "linear", "mlp"):
            raise ValueError(f"pooler.projection must be null, 'linear' or 'mlp', got {projection!r}")
        self.exclude_instruction = exclude_instruction
        self.projection = projection
        self.projection_dim = projection_dim
        self.hidden_size: int | None = None
        self.head: nn.Module = nn.Identity()

    def bind(self, hidden_size: int) -> Pooler:
        """Size the projection head for a backbone of width ``hidden_size``."""
        self.hidden_size = hidden_size
        out = self.projection_dim or hidden_size
        if self.projection == "linear":
            self.head = nn.Linear(hidden_size, out)
        elif self.projection == "mlp":
            self.head = nn.Sequential(
                nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.Linear(hidden_size, out)
            )
        return self

    @property
    def st_include_prompt(self) -> bool:
        """sentence-transformers' ``include_prompt`` that reproduces this pooler.

        False only where instruction tokens are really left out: an averaging pooler with
        ``exclude_instruction``. sentence-transformers' ``cls`` would move to the first token after
        the prompt, which this package's [CLS] pooler never does.
        """
        return not (self.exclude_instruction and self.averages_tokens)

    @property
    def out_dim(self) -> int:
        """Size of the pooled (and projected) embedding."""
        if self.hidden_size is None:
            raise RuntimeError("pooler is not bound to a backbone yet; call bind(hidden_size)")
        return (self.projection_dim or self.hidden_size) if self.projection else self.hidden_size

    def pool_mask(self, attention_mask: torch.Tensor, instruction_mask: torch.Tensor | None) -> torch.Tensor:
        """Tokens that take part in pooling: attended and, if configured, not instruction."""
        mask = attention_mask.bool()  # (B, L)
        if self.exclude_instruction and instruction_mask is not None:
            mask = mask & ~instruction_mask.bool()  # (B, L)
        return mask

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Reduce ``hidden`` (B, L, H) to (B, H); ``mask`` is the pooling mask (B, L)."""
        raise NotImplementedError

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor,
        instruction_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pool then project.

        Args:
            hidden: Last hidden states, (B, L, H).
            attention_mask: 1 for real tokens, 0 for padding, (B, L); left or right padding.
            instruction_mask: 1 for instruction tokens, (B, L), or None.

        Returns:
            (B, D) embeddings (not normalised; the Embedder normalises).
        """
        mask = self.pool_mask(attention_mask, instruction_mask)
        pooled = self.pool(hidden, mask, attention_mask)  # (B, H)
        return self.head(pooled)  # (B, D)


def masked_mean(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted average over the sequence: ``hidden`` (B, L, H), ``weights`` (B, L) >= 0."""
    w = weights.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    total = (hidden * w).sum(dim=1)  # (B, H)
    return total / w.sum(dim=1).clamp_min(1e-9)  # (B, H)
