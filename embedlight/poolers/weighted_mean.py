"""Position-weighted mean pooling (SGPT, Muennighoff 2022): later tokens weigh more."""

from __future__ import annotations

import torch

from embedlight.poolers.base import Pooler, masked_mean
from embedlight.registry import register


@register("pooler", "weighted_mean")
class WeightedMeanPooler(Pooler):
    """Mean of token states weighted by position 1..n among the real tokens (suits causal decoders).

    Positions count real tokens only, so left and right padding give the same result; with right
    padding this equals sentence-transformers' ``weightedmean`` pooling.
    """

    st_pooling_mode = "weightedmean"

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = attention_mask.long().cumsum(dim=1)  # (B, L) 1..n over real tokens
        return masked_mean(hidden, positions * mask)  # (B, H)
