"""Last-token pooling (E5-mistral, bge-en-icl): the state of the final real token ([EOS])."""

from __future__ import annotations

import torch

from embedlight.poolers.base import Pooler
from embedlight.registry import register


@register("pooler", "last_token")
class LastTokenPooler(Pooler):
    """Hidden state of the last attended token; correct for left and right padding.

    With causal attention only the last token has seen the whole text, so decoder embedders append
    [EOS] and pool it.
    """

    st_pooling_mode = "lasttoken"
    averages_tokens = False  # one token, chosen by the attention mask; instructions do not move it

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        seq_len = attention_mask.size(1)
        positions = torch.arange(seq_len, device=attention_mask.device)  # (L,)
        last = (positions * attention_mask.long()).argmax(dim=1)  # (B,) index of the last real token
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]  # (B, H)
