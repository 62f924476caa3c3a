"""Training FLOP models: what a backbone or a LightningModule reports for MFU accounting.

Counts follow PaLM (Chowdhery et al., 2022, appendix B) and Kaplan et al. (2020): a weight matrix
of ``N`` entries costs ``2N`` FLOPs per token forward, ``2N`` backward for the gradient with respect
to its input and ``2N`` for the gradient with respect to itself. A frozen weight still passes
gradients on to the layers below it, so it costs ``4N`` per token, a trained one ``6N``: full
fine-tuning ``6N``, LoRA (Hu et al., 2021) ``4 N_base + 6 N_adapters``. Attention scores and the
weighted sum cost ``4 * T * width`` per token and layer forward and twice that backward (no
weights): ``12 * layers * width * T`` per token of a row of ``T`` real tokens, the full square
(causal masking is not discounted, as in PaLM). Only real (non-pad) tokens are counted; biases,
norms, activations and embedding lookups are left out (under 1% of the FLOPs). The input gradient
of the lowest frozen layer is not needed when the embeddings are frozen too; that ``2N/layers``
saving is ignored.

A model reports a :class:`FlopModel`: any object with ``train_flops(tokens, squared)``, where
``tokens = sum(T)`` and ``squared = sum(T^2)`` over the rows of a step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn


class FlopModel(Protocol):
    """Forward + backward FLOPs of one training step from its rows' real-token counts."""

    def train_flops(self, tokens: float, squared: float) -> float:
        """FLOPs for rows with ``sum(T) = tokens`` and ``sum(T^2) = squared``."""
        ...


@dataclass(frozen=True)
class TransformerFlops:
    """A stack of attention layers whose every row attends over its own ``T`` real tokens.

    Attributes:
        frozen: Matrix-weight entries without gradients (LoRA's base weights).
        trainable: Matrix-weight entries that get gradients (all weights, or the adapters).
        layers: Attention layers.
        attention_width: ``heads * head_dim`` (the width of queries, keys and values).
    """

    frozen: int
    trainable: int
    layers: int
    attention_width: int

    @property
    def per_token(self) -> int:
        """Weight FLOPs per token: ``4`` per frozen entry, ``6`` per trained entry."""
        return 4 * self.frozen + 6 * self.trainable

    def train_flops(self, tokens: float, squared: float) -> float:
        """``per_token * sum(T) + 12 * layers * width * sum(T^2)``."""
        return float(self.per_token * tokens + 12 * self.layers * self.attention_width * squared)


@dataclass(frozen=True)
class TokenFlops:
    """Dense weights applied to a share of the tokens (e.g. an MLM head on the masked ones).

    Attributes:
        weights: Matrix-weight entries applied per token.
        share: Expected fraction of the real tokens they are applied to.
        trainable: Whether the weights get gradients (6 FLOPs per entry) or not (4).
    """

    weights: int
    share: float = 1.0
    trainable: bool = True

    def train_flops(self, tokens: float, squared: float) -> float:
        """``(6 or 4) * weights * share * sum(T)``."""
        return float((6 if self.trainable else 4) * self.weights * self.share * tokens)


@dataclass(frozen=True)
class SumFlops:
    """Several parts run on every row of a step (e.g. RetroMAE's encoder, decoder and heads)."""

    parts: Sequence[FlopModel]

    def train_flops(self, tokens: float, squared: float) -> float:
        """The parts' FLOPs added."""
        return float(sum(p.train_flops(tokens, squared) for p in self.parts))


def matrix_weights(module: nn.Module, skip: Iterable[nn.Module] = ()) -> tuple[int, int]:
    """``(frozen, trainable)`` entries of the 2-D weights that ``module`` multiplies activations by.

    Embedding tables (lookups) and the weights of the ``skip`` modules (e.g. BERT's unused [CLS]
    pooler) are left out; 1-D parameters (biases, norms) are not matrices.
    """
    skipped = {id(p) for m in skip for p in m.parameters()}
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            skipped.update(id(p) for p in m.parameters())
    frozen = trainable = 0
    for p in module.parameters():
        if p.ndim != 2 or id(p) in skipped:
            continue
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return frozen, trainable


def transformer_flops(module: nn.Module, config: Any, skip: Iterable[nn.Module] = ()) -> TransformerFlops:
    """The FLOP model of a Hugging Face transformer stack: weights counted from ``module`` itself.

    Args:
        module: The model (adapters included); which weights train is read from ``requires_grad``,
            so call this after freezing.
        config: Its config (``num_hidden_layers``, ``num_attention_heads``, optional ``head_dim``).
        skip: Submodules whose weights do not run per token.
    """
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or int(config.hidden_size) // heads)
    frozen, trainable = matrix_weights(module, skip)
    return TransformerFlops(frozen, trainable, int(config.num_hidden_layers), heads * head_dim)


def row_sums(lengths: torch.Tensor) -> tuple[float, float]:
    """``(sum(T), sum(T^2))`` of per-row real-token counts."""
    lengths = lengths.to(torch.float64)
    return float(lengths.sum()), float((lengths * lengths).sum())
