"""The parts RetroMAE adds to an encoder: the one-layer decoder and the tied MLM head.

Xiao et al., 2022, "RetroMAE: Pre-Training Retrieval-oriented Language Models Via Masked
Auto-Encoder" (Section 3): the decoder is a single transformer layer shaped like the encoder's,
freshly initialised; both the encoder's and the decoder's token predictions go through a BERT-style
MLM head tied to the encoder's word embeddings.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN


def config_value(config: Any, name: str, default: Any) -> Any:
    """``config.<name>`` of a Hugging Face config, or ``default`` when it is absent or None."""
    value = getattr(config, name, None)
    return default if value is None else value


class MLMHead(nn.Module):
    """BERT-style MLM head: dense -> activation -> LayerNorm -> vocabulary projection tied to the
    encoder's word embeddings (plus a bias).

    Args:
        word_embeddings: The encoder's input embedding table, (V, H); its weight is shared.
        act: Activation name (``gelu``, ...).
        eps: LayerNorm epsilon.
    """

    def __init__(self, word_embeddings: nn.Embedding, act: str = "gelu", eps: float = 1e-12) -> None:
        super().__init__()
        vocab, hidden = word_embeddings.weight.shape
        self.dense = nn.Linear(hidden, hidden)
        self.act = ACT2FN[act]
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.word_embeddings = [word_embeddings]  # a list: shared, not registered twice

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for hidden states, (..., H) -> (..., V)."""
        h = self.norm(self.act(self.dense(hidden)))  # (..., H)
        return F.linear(h, self.word_embeddings[0].weight, self.bias)  # (..., V)


class DecoderLayer(nn.Module):
    """One post-LayerNorm transformer layer (BERT's layout) whose queries and keys/values may differ.

    Args:
        hidden: Width.
        heads: Attention heads.
        intermediate: Feed-forward width.
        act: Feed-forward activation name.
        eps: LayerNorm epsilon.
        dropout: Dropout on the residual branches.
        attn_dropout: Dropout on the attention probabilities.
    """

    def __init__(
        self,
        hidden: int,
        heads: int,
        intermediate: int,
        act: str = "gelu",
        eps: float = 1e-12,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, intermediate)
        self.act = ACT2FN[act]
        self.ffn_out = nn.Linear(intermediate, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = attn_dropout

    def forward(self, query: torch.Tensor, content: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Attend from ``query`` (B, Lq, H) to ``content`` (B, Lk, H) where ``visible`` (B, Lq, Lk) is True."""
        b, lq, h = query.shape
        lk = content.size(1)
        d = h // self.heads
        q = self.query(query).view(b, lq, self.heads, d).transpose(1, 2)  # (B, nh, Lq, d)
        k = self.key(content).view(b, lk, self.heads, d).transpose(1, 2)  # (B, nh, Lk, d)
        v = self.value(content).view(b, lk, self.heads, d).transpose(1, 2)  # (B, nh, Lk, d)
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=visible.unsqueeze(1), dropout_p=self.attn_dropout if self.training else 0.0
        )  # (B, nh, Lq, d)
        attn = attn.transpose(1, 2).reshape(b, lq, h)  # (B, Lq, H)
        x = self.norm1(query + self.dropout(self.out(attn)))  # (B, Lq, H)
        return self.norm2(x + self.dropout(self.ffn_out(self.act(self.ffn_in(x)))))  # (B, Lq, H)
