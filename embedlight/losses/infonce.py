"""InfoNCE with in-batch and hard negatives (C-Pack/BGE, E5), plus GTR and GTE variants.

References:
    * van den Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding".
    * Xiao et al., 2023, "C-Pack: Packaged Resources To Advance General Chinese Embedding" (BGE).
    * Wang et al., 2022, "Text Embeddings by Weakly-Supervised Contrastive Pre-training" (E5).
    * Ni et al., 2021, "Large Dual Encoders Are Generalizable Retrievers" (GTR: bidirectional loss).
    * Li et al., 2023, "Towards General Text Embeddings with Multi-stage Contrastive Learning"
      (GTE: improved contrastive loss with query-query and doc-doc terms in the denominator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedlight.losses.distributed import gather_with_grad, world
from embedlight.registry import register


@register("loss", "infonce")
class InfoNCELoss(nn.Module):
    """Softmax cross-entropy of each query's positive against its negatives.

    ``docs`` holds G = 1 + k documents per query (positive first, then k hard negatives). With
    in-batch negatives every query is also scored against every other query's documents, on all
    data-parallel ranks if ``cross_device``.

    Args:
        temperature: Softmax temperature on cosine (or dot) scores; 0.02 as in C-Pack and E5-mistral.
        in_batch_negatives: Score against other rows' documents. False gives FlagEmbedding's
            ``no_in_batch_neg`` mode (only the row's own group), used for classification/clustering
            rows whose in-batch "negatives" may share the label. A batch may override it.
        bidirectional: GTR: add the document-to-query loss (each positive picks its query).
        extended: GTE: add query-query and document-document in-batch similarities (and other
            queries against this positive) to the denominator.
        cross_device: Gather queries and documents from all ranks for in-batch negatives.
    """

    def __init__(
        self,
        temperature: float = 0.02,  # C-Pack / E5-mistral default
        in_batch_negatives: bool = True,  # False = FlagEmbedding's no_in_batch_neg
        bidirectional: bool = False,  # GTR
        extended: bool = False,  # GTE improved contrastive loss
        cross_device: bool = True,  # negatives from every DDP rank
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"loss.temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.in_batch_negatives = in_batch_negatives
        self.bidirectional = bidirectional
        self.extended = extended
        self.cross_device = cross_device

    def forward(
        self,
        query: torch.Tensor,
        docs: torch.Tensor,
        in_batch_negatives: bool | None = None,
        **_: object,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            query: (B, D) query embeddings.
            docs: (B*G, D) document embeddings, G per query, positive first.
            in_batch_negatives: Per-batch override of the constructor's setting.

        Returns:
            Scalar loss.
        """
        batch = query.size(0)
        if docs.size(0) % batch:
            raise ValueError(f"docs ({docs.size(0)}) is not a multiple of the queries ({batch})")
        group = docs.size(0) // batch
        use_in_batch = self.in_batch_negatives if in_batch_negatives is None else in_batch_negatives
        t = self.temperature

        if not use_in_batch:
            grouped = docs.view(batch, group, -1)  # (B, G, D)
            scores = torch.einsum("bd,bgd->bg", query, grouped) / t  # (B, G)
            target = torch.zeros(batch, dtype=torch.long, device=query.device)  # positive at 0
            return F.cross_entropy(scores, target)

        rank, size = world() if self.cross_device else (0, 1)
        all_q = gather_with_grad(query) if size > 1 else query  # (N, D), N = W*B
        all_d = gather_with_grad(docs) if size > 1 else docs  # (N*G, D)
        offset = rank * batch
        rows = torch.arange(batch, device=query.device)  # (B,)
        target = (offset + rows) * group  # (B,) index of each positive in all_d

        scores = query @ all_d.T / t  # (B, N*G)
        if self.extended:
            self_mask = torch.zeros(batch, all_q.size(0), dtype=torch.bool, device=query.device)
            self_mask[rows, offset + rows] = True  # (B, N) the pair (i, i)
            pos = docs[::group]  # (B, D) this rank's positives
            all_pos = all_d[::group]  # (N, D)
            qq = (query @ all_q.T / t).masked_fill(self_mask, float("-inf"))  # (B, N) q_i vs q_j, j != i
            qd = (pos @ all_q.T / t).masked_fill(self_mask, float("-inf"))  # (B, N) q_j vs d_i+, j != i
            dd = (pos @ all_pos.T / t).masked_fill(self_mask, float("-inf"))  # (B, N) d_j+ vs d_i+, j != i
            scores = torch.cat([scores, qq, qd, dd], dim=1)  # (B, N*G + 3N)
        loss = F.cross_entropy(scores, target)

        if self.bidirectional:
            pos = docs[::group]  # (B, D)
            back = pos @ all_q.T / t  # (B, N) each positive against every query
            loss = (loss + F.cross_entropy(back, offset + rows)) / 2
        return loss
