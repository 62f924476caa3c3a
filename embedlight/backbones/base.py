"""The backbone contract: what every caller (embedder, datamodules, export, FSDP, throughput) reads.

A registered backbone subclasses :class:`Backbone` and so declares, instead of leaving callers to
probe it with ``getattr``: its width, its tokenizer and padding side, whether it appends [EOS], its
transformer-layer classes, its FLOP model and how it saves itself.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from embedlight.utils.flops import FlopModel


class Backbone(nn.Module, metaclass=abc.ABCMeta):
    """Maps token ids to hidden states and owns the tokenizer that makes them.

    Attributes:
        hidden_size: Width ``H`` of the hidden states (set in ``__init__``).
        tokenizer: The Hugging Face tokenizer; it pads on :attr:`padding_side` (set in ``__init__``).
        append_eos: Whether every input gets the tokenizer's [EOS] appended (decoder embedders pool
            its state). Datamodules, ``Embedder.encode`` and the export read it from here.
    """

    append_eos: bool = False
    hidden_size: int
    tokenizer: Any

    @property
    @abc.abstractmethod
    def padding_side(self) -> str:
        """``left`` or ``right``: the side this backbone's batches are padded on."""

    @property
    @abc.abstractmethod
    def layer_classes(self) -> tuple[type[nn.Module], ...]:
        """The repeated transformer-layer classes (FSDP wrap and activation-checkpointing units)."""

    @abc.abstractmethod
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states: ``input_ids`` (B, L), ``attention_mask`` (B, L) -> (B, L, H)."""

    @abc.abstractmethod
    def flop_model(self) -> FlopModel:
        """Training FLOPs per step (see :mod:`embedlight.utils.flops`)."""

    @abc.abstractmethod
    def save_pretrained(self, directory: str, padding_side: str | None = None) -> None:
        """Write weights and tokenizer to ``directory``, loadable by ``transformers.AutoModel``.

        Args:
            directory: Output folder.
            padding_side: Padding side written into the saved tokenizer (None: this backbone's own);
                the live tokenizer is not changed.
        """
