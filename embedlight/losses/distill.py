"""Knowledge distillation from teacher scores: KL(teacher || student) over each query's documents.

Rows carrying ``pos_scores``/``neg_scores`` (FlagEmbedding's files, or ``embedlight-score`` output)
reach the loss as ``teacher_scores`` (B, G): the teacher's score of each of a query's G documents, in
the order of ``docs`` (positive first).

References:
    * Hinton et al., 2015, "Distilling the Knowledge in a Neural Network" (softened softmax targets).
    * Xiao et al., 2023, "C-Pack: Packaged Resources To Advance General Chinese Embedding" and
      FlagEmbedding's ``kd_loss_type=kl_div``: target ``softmax(teacher / t_t)``, prediction
      ``log_softmax(student / t_s)`` over the query's group. FlagEmbedding minimises the cross-entropy
      ``-sum p_t log p_s``; this file reports the KL divergence ``sum p_t (log p_t - log p_s)``, which
      differs from it by the teacher's entropy (a constant), so the gradients are identical and the
      value is 0 when the student matches the teacher.
    * Qu et al., 2021, "RocketQA" and Ren et al., 2021, "RocketQAv2" (cross-encoder teachers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedlight.losses.distributed import fp32_scores
from embedlight.losses.infonce import InfoNCELoss
from embedlight.registry import register


def group_scores(query: torch.Tensor, docs: torch.Tensor) -> torch.Tensor:
    """Each query's score with its own G documents, (B, G), from (B, D) queries and (B*G, D) docs."""
    batch = query.size(0)
    if docs.size(0) % batch:
        raise ValueError(f"docs ({docs.size(0)}) is not a multiple of the queries ({batch})")
    grouped = docs.view(batch, docs.size(0) // batch, -1)  # (B, G, D)
    return torch.einsum("bd,bgd->bg", query, grouped)  # (B, G)


def kl_teacher_student(
    student: torch.Tensor, teacher: torch.Tensor, student_temperature: float, teacher_temperature: float
) -> torch.Tensor:
    """Mean over rows of ``KL(softmax(teacher/t_t) || softmax(student/t_s))``; (B, G) inputs, scalar out."""
    teacher = teacher.to(student.dtype)
    log_p_t = F.log_softmax(teacher / teacher_temperature, dim=-1)  # (B, G)
    log_p_s = F.log_softmax(student / student_temperature, dim=-1)  # (B, G)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1).mean()


def _check_temperature(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"loss.{name} must be > 0, got {value}")


def _teacher(teacher_scores: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
    if teacher_scores is None:
        raise ValueError(
            "distillation needs teacher scores: every row of the batch must carry 'pos_scores' and "
            "'neg_scores' (add them with embedlight-score)"
        )
    if teacher_scores.shape != shape:
        raise ValueError(f"teacher_scores has shape {tuple(teacher_scores.shape)}, expected {tuple(shape)}")
    if not torch.isfinite(teacher_scores).all():
        raise ValueError("teacher_scores contains a non-finite value")
    return teacher_scores


@register("loss", "distill_kl")
class DistillKLLoss(nn.Module):
    """KL divergence from the teacher's to the student's distribution over each query's G documents.

    Args:
        temperature: Student temperature ``t_s`` on its cosine (or dot) scores (0.02, as InfoNCE).
        teacher_temperature: Teacher temperature ``t_t`` on the stored teacher scores (1.0: the
            scores are used as logits as they are, FlagEmbedding's default).
    """

    def __init__(self, temperature: float = 0.02, teacher_temperature: float = 1.0) -> None:
        super().__init__()
        _check_temperature("temperature", temperature)
        _check_temperature("teacher_temperature", teacher_temperature)
        self.temperature = temperature
        self.teacher_temperature = teacher_temperature

    def forward(
        self,
        query: torch.Tensor,
        docs: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss.

        Args:
            query: (B, D) query embeddings.
            docs: (B*G, D) document embeddings, G per query, positive first.
            teacher_scores: (B, G) teacher scores of the same documents in the same order.

        Returns:
            Scalar loss.
        """
        with fp32_scores(query.device):  # scores and softmaxes in fp32 even under bf16 autocast
            student = group_scores(query.float(), docs.float())  # (B, G)
            teacher = _teacher(teacher_scores, student.shape)  # (B, G)
            return kl_teacher_student(student, teacher, self.temperature, self.teacher_temperature)


@register("loss", "infonce_distill")
class InfoNCEDistillLoss(nn.Module):
    """``infonce_weight * InfoNCE + distill_weight * KL(teacher || student)`` (C-Pack / FlagEmbedding).

    Batches without teacher scores (a source whose rows have none) train on the InfoNCE term alone
    when ``require_teacher`` is false; by default they stop the run with a clear error.

    Args:
        temperature: Student temperature for both terms.
        teacher_temperature: Teacher temperature of the distillation term.
        infonce_weight: Weight of the contrastive term.
        distill_weight: Weight of the distillation term.
        in_batch_negatives: InfoNCE with other rows' documents (see ``infonce``).
        cross_device: Gather in-batch negatives from every rank (see ``infonce``).
        require_teacher: Fail on a batch without teacher scores instead of skipping the KL term.
    """

    def __init__(
        self,
        temperature: float = 0.02,
        teacher_temperature: float = 1.0,
        infonce_weight: float = 1.0,
        distill_weight: float = 1.0,
        in_batch_negatives: bool = True,
        cross_device: bool = True,
        require_teacher: bool = True,
    ) -> None:
        super().__init__()
        self.infonce = InfoNCELoss(temperature, in_batch_negatives, cross_device=cross_device)
        self.distill = DistillKLLoss(temperature, teacher_temperature)
        self.infonce_weight = infonce_weight
        self.distill_weight = distill_weight
        self.require_teacher = require_teacher

    def forward(
        self,
        query: torch.Tensor,
        docs: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
        in_batch_negatives: bool | None = None,
        query_hash: torch.Tensor | None = None,
        doc_hash: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the weighted sum; arguments as ``infonce`` and ``distill_kl``."""
        loss = self.infonce_weight * self.infonce(query, docs, in_batch_negatives, query_hash, doc_hash)
        if teacher_scores is None and not self.require_teacher:
            return loss
        return loss + self.distill_weight * self.distill(query, docs, teacher_scores=teacher_scores)
