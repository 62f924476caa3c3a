"""InfoNCE with in-batch and hard negatives (C-Pack/BGE, E5), plus GTR and GTE variants.

References:
    * van den Oord et al., 2018, "Representation Learning with Contrastive Predictive Coding".
    * Xiao et al., 2023, "C-Pack: Packaged Resources To Advance General Chinese Embedding" (BGE).
    * Wang et al., 2022, "Text Embeddings by Weakly-Supervised Contrastive Pre-training" (E5).
    * Ni et al., 2021, "Large Dual Encoders Are Generalizable Retrievers" (GTR: bidirectional loss).
    * Li et al., 2023, "Towards General Text Embeddings with Multi-stage Contrastive Learning"
      (GTE: improved contrastive loss with query-query and doc-doc terms in the denominator).

Logits are computed in fp32 with autocast off (:func:`~embedlight.losses.distributed.fp32_scores`).
Duplicate texts are masked: when the batch carries ``query_hash`` (B,) and ``doc_hash`` (B*G,) (the
collator sends them), a document whose text equals the row's positive, and the positive of another
row whose query text equals this row's, are not scored as negatives (they would be false negatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedlight.losses.distributed import fp32_scores, gather_nograd, gather_with_grad, world
from embedlight.registry import register

NEG_INF = float("-inf")


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
        query_hash: torch.Tensor | None = None,
        doc_hash: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            query: (B, D) query embeddings.
            docs: (B*G, D) document embeddings, G per query, positive first.
            in_batch_negatives: Per-batch override of the constructor's setting.
            query_hash: (B,) int64 ids of the query texts (equal text, equal id); optional.
            doc_hash: (B*G,) int64 ids of the document texts; optional.

        Returns:
            Scalar loss (fp32).
        """
        with fp32_scores(query.device):
            terms = self.logits(query, docs, in_batch_negatives, query_hash, doc_hash)
            loss = F.cross_entropy(terms["scores"], terms["target"])
            if "back" in terms:
                loss = (loss + F.cross_entropy(terms["back"], terms["back_target"])) / 2
        return loss

    def logits(
        self,
        query: torch.Tensor,
        docs: torch.Tensor,
        in_batch_negatives: bool | None = None,
        query_hash: torch.Tensor | None = None,
        doc_hash: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The fp32 logits and targets of the loss (see :meth:`forward` for the arguments).

        Returns:
            ``scores`` (B, C) and ``target`` (B,); with ``bidirectional`` also ``back`` (B, N) and
            ``back_target`` (B,). Masked entries are ``-inf``.
        """
        batch = query.size(0)
        if docs.size(0) % batch:
            raise ValueError(f"docs ({docs.size(0)}) is not a multiple of the queries ({batch})")
        group = docs.size(0) // batch
        use_in_batch = self.in_batch_negatives if in_batch_negatives is None else in_batch_negatives
        t = self.temperature
        hashed = query_hash is not None and doc_hash is not None
        with fp32_scores(query.device):
            query, docs = query.float(), docs.float()
            rows = torch.arange(batch, device=query.device)  # (B,)
            if not use_in_batch:
                grouped = docs.view(batch, group, -1)  # (B, G, D)
                scores = torch.einsum("bd,bgd->bg", query, grouped) / t  # (B, G)
                if hashed:
                    dup = doc_hash.view(batch, group) == doc_hash.view(batch, group)[:, :1]  # (B, G)
                    dup[:, 0] = False
                    scores = scores.masked_fill(dup, NEG_INF)
                return {"scores": scores, "target": torch.zeros_like(rows)}  # positive at 0

            rank, size = world() if self.cross_device else (0, 1)
            all_q = gather_with_grad(query) if size > 1 else query  # (N, D), N = W*B
            all_d = gather_with_grad(docs) if size > 1 else docs  # (N*G, D)
            offset = rank * batch
            target = (offset + rows) * group  # (B,) index of each positive in all_d
            scores = query @ all_d.T / t  # (B, N*G)
            if hashed:
                all_qh = gather_nograd(query_hash) if size > 1 else query_hash  # (N,)
                all_dh = gather_nograd(doc_hash) if size > 1 else doc_hash  # (N*G,)
                pos_h, all_pos_h = doc_hash[::group], all_dh[::group]  # (B,), (N,)
                same_q = query_hash[:, None] == all_qh[None, :]  # (B, N) q_j has q_i's text
                same_pos = pos_h[:, None] == all_pos_h[None, :]  # (B, N) d_j+ has d_i+'s text
                dup = pos_h[:, None] == all_dh[None, :]  # (B, N*G) a document with d_i+'s text
                dup.view(batch, -1, group)[:, :, 0] |= same_q  # the positive of a duplicate query
                dup[rows, target] = False
                scores = scores.masked_fill(dup, NEG_INF)
            out = {"scores": scores, "target": target}
            self_mask = torch.zeros(batch, all_q.size(0), dtype=torch.bool, device=query.device)
            self_mask[rows, offset + rows] = True  # (B, N) the pair (i, i)
            pos = docs[::group]  # (B, D) this rank's positives
            if self.extended:
                all_pos = all_d[::group]  # (N, D)
                q_mask = (self_mask | same_q) if hashed else self_mask  # (B, N)
                d_mask = (self_mask | same_pos) if hashed else self_mask  # (B, N)
                qq = (query @ all_q.T / t).masked_fill(q_mask, NEG_INF)  # (B, N) q_i vs q_j, j != i
                qd = (pos @ all_q.T / t).masked_fill(q_mask, NEG_INF)  # (B, N) q_j vs d_i+, j != i
                dd = (pos @ all_pos.T / t).masked_fill(d_mask, NEG_INF)  # (B, N) d_j+ vs d_i+, j != i
                out["scores"] = torch.cat([scores, qq, qd, dd], dim=1)  # (B, N*G + 3N)
            if self.bidirectional:
                back = pos @ all_q.T / t  # (B, N) each positive against every query
                if hashed:
                    back = back.masked_fill((same_q | same_pos) & ~self_mask, NEG_INF)
                out["back"], out["back_target"] = back, offset + rows
        return out
