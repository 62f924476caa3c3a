"""Bidirectional transformer encoders from Hugging Face (BERT, RoBERTa, XLM-R, MiniLM, ...)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embedlight.backbones.hf_base import HFBackbone
from embedlight.registry import register


@register("backbone", "hf_encoder")
class HFEncoder(HFBackbone):
    """Any ``transformers.AutoModel`` encoder, loaded from a hub id, a local folder or a bundled name.

    Args:
        pretrained: Hub id, local folder, or a bundled short name (``all-MiniLM-L6-v2``, ``minilm``).
        random_init: Build the architecture from its config with fresh weights (for smoke tests or
            pretraining from scratch); the tokenizer still comes from ``pretrained``.
        config_overrides: Config fields to change before building (``{num_hidden_layers: 2}``).
        tokenizer: Tokenizer source if it differs from ``pretrained``.
        gradient_checkpointing: Recompute activations in backward to save memory.
        dtype: Weight dtype (``null`` keeps the checkpoint's, ``bf16``, ``float32``).
        attn_implementation: ``sdpa`` (default), ``eager`` or ``flash_attention_2``.
        trust_remote_code: Run model code shipped with the checkpoint. Off by default: only enable it
            for checkpoints you trust.
        cudnn_attention: Allow PyTorch's cuDNN attention backend (off: it plans per sequence
            length, see :func:`embedlight.utils.hardware.set_cudnn_attention`). Process-wide.
    """

    append_eos = False  # encoders end inputs with their own [SEP]

    def __init__(
        self,
        pretrained: str = "all-MiniLM-L6-v2",  # hub id, folder, or bundled short name
        random_init: bool = False,  # fresh weights of the same architecture
        config_overrides: dict[str, Any] | None = None,  # e.g. {num_hidden_layers: 2}
        tokenizer: str | None = None,  # defaults to `pretrained`
        gradient_checkpointing: bool = False,  # trade compute for memory
        dtype: str | None = None,  # null | float32 | bf16 | fp16
        attn_implementation: str | None = "sdpa",  # sdpa | eager | flash_attention_2
        trust_remote_code: bool = False,  # never on by default
        cudnn_attention: bool = False,  # cuDNN SDPA re-plans per sequence length: slow with dynamic padding
    ) -> None:
        super().__init__(pretrained, tokenizer, trust_remote_code)
        self.model = self._load_model(
            random_init, config_overrides, dtype, attn_implementation, trust_remote_code, cudnn_attention
        )
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.hidden_size: int = int(self.model.config.hidden_size)
        pooler = getattr(self.model, "pooler", None)
        if isinstance(pooler, nn.Module):  # BERT's [CLS] dense+tanh head: unused by embedlight's poolers
            pooler.requires_grad_(False)  # frozen, so DDP does not wait for its gradients

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        """Return the last hidden states, (B, L, H)."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state  # (B, L, H)

    def _unused_modules(self) -> list[nn.Module]:
        """BERT's [CLS] pooler (dense + tanh): loaded with the model, never run (left out of the FLOPs)."""
        pooler = getattr(self.model, "pooler", None)
        return [pooler] if isinstance(pooler, nn.Module) else []
