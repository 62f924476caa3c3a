"""Mean pooling (sentence-transformers, E5, GTE): average of the token states."""

from __future__ import annotations

import torch

from embedlight.poolers.base import Pooler, masked_mean
from embedlight.registry import register


@register("pooler", "mean")
class MeanPooler(Pooler):
    """Average of the hidden states over attended (and, optionally, non-instruction) tokens."""

    st_pooling_mode = "mean"

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(hidden, mask)  # (B, H)
