"""CoSENT ranking loss for scored pairs (STS data).

Reference: Su, 2022, "CoSENT: a more efficient sentence vector scheme than Sentence-BERT"; used by
text2vec and sentence-transformers' ``CoSENTLoss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedlight.losses.distributed import fp32_scores
from embedlight.registry import register


@register("loss", "cosent")
class CoSENTLoss(nn.Module):
    """Pairwise ranking of cosine scores by gold score: ``log(1 + sum exp(s*(cos_j - cos_i)))`` over
    every pair with ``label_i > label_j``.

    Args:
        scale: Inverse temperature ``s`` on cosine differences (20 as in CoSENT).
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(
        self,
        query: torch.Tensor,
        docs: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            query: (B, D) first texts.
            docs: (B, D) second texts (group size 1).
            labels: (B,) gold similarity scores.

        Returns:
            Scalar loss.
        """
        if labels is None:
            raise ValueError("cosent needs scored pairs: a batch with 'labels' (rows {text1, text2, score})")
        if docs.size(0) != query.size(0):
            raise ValueError(f"cosent expects one document per query, got {docs.size(0)} for {query.size(0)}")
        with fp32_scores(query.device):  # cosines in fp32 even under bf16 autocast
            cos = self.logits(query, docs)  # (B,)
            diff = cos[None, :] - cos[:, None]  # (B, B) entry [i, j] = s*(cos_j - cos_i)
            labels = labels.float()
            ordered = labels[:, None] > labels[None, :]  # (B, B) label_i > label_j
            diff = diff.masked_fill(~ordered, float("-inf"))  # (B, B)
            zero = torch.zeros(1, dtype=cos.dtype, device=cos.device)  # the "1 +" term: log(e^0 + ...)
            return torch.logsumexp(torch.cat([zero, diff.flatten()]), dim=0)

    def logits(self, query: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
        """Scaled cosines ``s * cos(query_i, docs_i)``, (B,), computed in fp32 with autocast off."""
        with fp32_scores(query.device):
            return F.cosine_similarity(query.float(), docs.float(), dim=-1) * self.scale  # (B,)
