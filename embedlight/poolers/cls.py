"""[CLS] pooling (BERT, BGE): the first real token's state."""

from __future__ import annotations

import torch

from embedlight.poolers.base import Pooler
from embedlight.registry import register


@register("pooler", "cls")
class CLSPooler(Pooler):
    """Hidden state of the first attended token ([CLS] for BERT-style encoders), either padding side."""

    st_pooling_mode = "cls"
    averages_tokens = False  # one token, chosen by the attention mask; instructions do not move it

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        first = attention_mask.long().argmax(dim=1)  # (B,) index of the first real token
        return hidden[torch.arange(hidden.size(0), device=hidden.device), first]  # (B, H)
