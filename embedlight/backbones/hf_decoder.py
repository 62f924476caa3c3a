"""Decoder-only LLM backbones with LoRA (E5-mistral, bge-en-icl).

Decoder embedders keep the LLM's causal attention, append [EOS] to every input and pool its hidden
state (``pooler=last_token``); only low-rank adapters are trained.

References:
    * Wang et al., 2024, "Improving Text Embeddings with Large Language Models" (E5-mistral: LoRA
      r=16, [EOS] last-token pooling, ``Instruct: {task}\\nQuery: {query}``).
    * Li et al., 2024, "Making Text Embedders Few-Shot Learners" (bge-en-icl: LoRA r=32/alpha=64 on
      Mistral-7B, few-shot examples in the query).
    * Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models".

The bundled short names ``smollm2`` / ``SmolLM2-135M-Instruct`` are listed in
:mod:`embedlight.backbones.bundled`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from embedlight.backbones.hf_base import HFBackbone
from embedlight.registry import register

log = logging.getLogger(__name__)

# Mistral/Llama/Qwen projection names; peft maps other architectures itself when target_modules is null
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def ensure_pad_token(tokenizer: Any, padding_side: str = "left") -> None:
    """Give ``tokenizer`` a pad token if it has none (unk, else eos) and set its padding side."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
        log.info("backbone: tokenizer has no pad token; using %r", tokenizer.pad_token)
    if padding_side not in ("left", "right"):
        raise ValueError(f"backbone.padding_side must be 'left' or 'right', got {padding_side!r}")
    tokenizer.padding_side = padding_side


@register("backbone", "hf_decoder")
class HFDecoder(HFBackbone):
    """A causal LM (Mistral, Llama, Qwen, SmolLM2, ...) as an embedding backbone, optionally with LoRA.

    The decoder stack is loaded with ``AutoModel`` (no LM head); [EOS] is appended to every input
    (``append_eos``), and a pad token is set when the tokenizer has none.

    Args:
        pretrained: Hub id (``mistralai/Mistral-7B-v0.1``), local folder, or bundled name (``smollm2``).
        lora: Train low-rank adapters only (the base weights are frozen).
        lora_r: LoRA rank (E5-mistral 16, bge-en-icl 32).
        lora_alpha: LoRA scaling numerator (bge-en-icl 64).
        lora_dropout: Dropout on the adapter input.
        target_modules: Module names to adapt; null lets peft choose for the architecture.
        gradient_checkpointing: Recompute activations in backward to save memory.
        dtype: Weight dtype (``bf16`` on GPUs; ``null`` keeps the checkpoint's).
        padding_side: ``left`` (default, as FlagEmbedding's ICL trainer) or ``right``.
        attn_implementation: ``sdpa`` (default), ``eager`` or ``flash_attention_2``.
        random_init: Fresh weights of the same architecture (smoke tests).
        config_overrides: Config fields to change before building.
        tokenizer: Tokenizer source if it differs from ``pretrained``.
        trust_remote_code: Run model code shipped with the checkpoint (off by default).
        cudnn_attention: Allow PyTorch's cuDNN attention backend (see ``HFEncoder``). Process-wide.
    """

    append_eos = True  # decoder embedders pool the [EOS] state

    def __init__(
        self,
        pretrained: str = "smollm2",  # hub id, folder, or bundled short name
        lora: bool = True,  # train adapters only
        lora_r: int = 16,  # E5-mistral 16, bge-en-icl 32
        lora_alpha: int = 32,  # bge-en-icl 64
        lora_dropout: float = 0.05,
        target_modules: Sequence[str] | None = DEFAULT_TARGETS,  # null = peft's default for the model
        gradient_checkpointing: bool = False,  # trade compute for memory
        dtype: str | None = None,  # null | float32 | bf16 | fp16
        padding_side: str = "left",  # left | right
        attn_implementation: str | None = "sdpa",  # sdpa | eager | flash_attention_2
        random_init: bool = False,  # fresh weights of the same architecture
        config_overrides: dict[str, Any] | None = None,
        tokenizer: str | None = None,  # defaults to `pretrained`
        trust_remote_code: bool = False,  # never on by default
        cudnn_attention: bool = False,  # cuDNN SDPA re-plans per sequence length: slow with dynamic padding
    ) -> None:
        super().__init__(pretrained, tokenizer, trust_remote_code)
        if self.tokenizer.eos_token is None:
            raise ValueError(f"backbone {pretrained!r}: the tokenizer has no eos_token to append and pool")
        ensure_pad_token(self.tokenizer, padding_side)
        base = self._load_model(
            random_init, config_overrides, dtype, attn_implementation, trust_remote_code, cudnn_attention
        )
        if getattr(base.config, "pad_token_id", None) is None:
            base.config.pad_token_id = self.tokenizer.pad_token_id
        if gradient_checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.config.use_cache = False
        self.lora = lora
        if lora:
            from peft import LoraConfig, TaskType, get_peft_model

            config = LoraConfig(
                r=lora_r,
                lora_alpha=lora_alpha,
                lora_dropout=lora_dropout,
                bias="none",
                target_modules=list(target_modules) if target_modules else None,
                task_type=TaskType.FEATURE_EXTRACTION,
            )
            self.model = get_peft_model(base, config)
        else:
            self.model = base
        self.hidden_size: int = int(base.config.hidden_size)
        trainable, total = self.num_parameters()
        log.info(
            "backbone: %s, %d / %d trainable parameters (%.3f%%)",
            pretrained,
            trainable,
            total,
            100.0 * trainable / max(total, 1),
        )

    @property
    def base_model(self) -> nn.Module:
        """The decoder stack without adapters' wrapper (its LoRA layers are still injected)."""
        return self.model.get_base_model() if self.lora else self.model

    def num_parameters(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, sum(p.numel() for p in self.parameters())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        """Return the last hidden states, (B, L, H).

        Position ids count real tokens only (0 at each row's first real token), so a left-padded row
        gets the same positions, hence the same states, as the right-padded row that
        sentence-transformers and plain transformers build from an export.
        """
        positions = (attention_mask.long().cumsum(dim=1) - 1).clamp_min(0)  # (B, L)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False
        )
        return out.last_hidden_state  # (B, L, H)

    def merged_state_dict(self) -> dict[str, torch.Tensor]:
        """The base model's state dict with every LoRA delta folded into its weight (non-destructive).

        ``W' = W + (alpha / r) * B @ A`` is computed in float32 and cast back to the weight's dtype; the
        live model, its adapters and the optimizer state are left untouched.
        """
        base = self.base_model
        if not self.lora:
            return {k: v.detach() for k, v in base.state_dict().items()}
        from peft.tuners.lora import LoraLayer

        state: dict[str, torch.Tensor] = {}
        for key, value in base.state_dict().items():
            if ".lora_" in key:
                continue
            state[key.replace(".base_layer.", ".")] = value.detach()
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            weight = module.get_base_layer().weight  # (out, in)
            merged = weight.detach().float()
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    merged = merged + module.get_delta_weight(adapter).detach().float()  # (out, in)
            state[f"{name}.weight"] = merged.to(weight.dtype).contiguous()
        return state

    def _save_weights(self, directory: str) -> None:
        """Write the decoder with LoRA merged (safetensors, ``AutoModel``-loadable, no peft needed)."""
        self.base_model.save_pretrained(
            directory, state_dict=self.merged_state_dict(), safe_serialization=True
        )
