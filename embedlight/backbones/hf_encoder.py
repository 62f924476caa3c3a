"""Bidirectional transformer encoders from Hugging Face (BERT, RoBERTa, XLM-R, MiniLM, ...)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from embedlight.backbones.loading import check_loading_info
from embedlight.backbones.resolve import resolve_pretrained
from embedlight.registry import register
from embedlight.utils.flops import TransformerFlops, transformer_flops
from embedlight.utils.hardware import set_cudnn_attention

log = logging.getLogger(__name__)

DTYPES = {
    None: None,
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def torch_dtype(name: str | None) -> torch.dtype | None:
    """Parse a dtype name from config (``bf16``, ``float32``, ...)."""
    if name not in DTYPES:
        raise ValueError(f"backbone.dtype must be one of {sorted(k for k in DTYPES if k)}, got {name!r}")
    return DTYPES[name]


def load_hf_tokenizer(path: str, tokenizer: str | None, trust: bool) -> PreTrainedTokenizerBase:
    """The tokenizer of ``path``, or of ``tokenizer`` (a hub id, folder or bundled name) if given."""
    return AutoTokenizer.from_pretrained(
        resolve_pretrained(tokenizer) if tokenizer else path, trust_remote_code=trust
    )


def load_hf_model(
    name: str,
    path: str,
    random_init: bool,
    overrides: dict[str, Any],
    dtype: torch.dtype | None,
    attn: str | None,
    trust: bool,
    cudnn_attention: bool = False,
) -> nn.Module:
    """Load ``AutoModel`` weights from ``path`` (or build it fresh from its config), in training mode.

    ``from_pretrained`` returns a model in eval mode (dropout off); a trainer wants it on. The cuDNN
    attention backend is switched per ``cudnn_attention`` (see :func:`embedlight.utils.hardware.set_cudnn_attention`).
    """
    set_cudnn_attention(cudnn_attention)
    kwargs: dict[str, Any] = {"trust_remote_code": trust}
    if attn:
        kwargs["attn_implementation"] = attn
    if random_init:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust, **overrides)
        log.info("backbone: random init of %s (%s)", config.model_type, overrides or "no overrides")
        model = AutoModel.from_config(config, **kwargs)
        model = model.to(dtype) if dtype else model
    else:
        log.info("backbone: loading %s from %s", name, path)
        model, info = AutoModel.from_pretrained(
            path, dtype=dtype, output_loading_info=True, **kwargs, **overrides
        )
        check_loading_info(path, info["missing_keys"], info.get("mismatched_keys", ()))
    return model.train()


def transformer_layer_classes(model: nn.Module) -> tuple[type[nn.Module], ...]:
    """The classes of ``model``'s repeated transformer layers (FSDP wrap / checkpointing units).

    A layer is a module held in an ``nn.ModuleList`` (the layer stack); when the model lists
    ``_no_split_modules`` (transformers' own "do not split across devices" units) only those
    names count, which leaves out e.g. BERT's embeddings. BERT -> ``BertLayer``, Llama ->
    ``LlamaDecoderLayer``; LoRA-wrapped models report the same classes.
    """
    names: set[str] = set()
    for m in model.modules():
        names.update(getattr(m, "_no_split_modules", None) or ())
    stacked = {type(c) for m in model.modules() if isinstance(m, nn.ModuleList) for c in m}
    found = sorted((c for c in stacked if not names or c.__name__ in names), key=lambda c: c.__name__)
    if not found:
        raise ValueError(f"{type(model).__name__}: no repeated transformer layer (nn.ModuleList) found")
    return tuple(found)


@register("backbone", "hf_encoder")
class HFEncoder(nn.Module):
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
        super().__init__()
        self.pretrained = pretrained
        path = resolve_pretrained(pretrained)
        self.tokenizer = load_hf_tokenizer(path, tokenizer, trust_remote_code)
        self.model = load_hf_model(
            pretrained,
            path,
            random_init,
            dict(config_overrides or {}),
            torch_dtype(dtype),
            attn_implementation,
            trust_remote_code,
            cudnn_attention,
        )
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.hidden_size: int = int(self.model.config.hidden_size)
        pooler = getattr(self.model, "pooler", None)
        if isinstance(pooler, nn.Module):  # BERT's [CLS] dense+tanh head: unused by embedlight's poolers
            pooler.requires_grad_(False)  # frozen, so DDP does not wait for its gradients

    @property
    def padding_side(self) -> str:
        """``left`` or ``right``: how this backbone's batches are padded (the tokenizer's side)."""
        return str(self.tokenizer.padding_side)

    @property
    def layer_classes(self) -> tuple[type[nn.Module], ...]:
        """This model's transformer-layer classes (FSDP auto-wrap and activation checkpointing)."""
        return transformer_layer_classes(self.model)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> torch.Tensor:
        """Return the last hidden states, (B, L, H)."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out.last_hidden_state  # (B, L, H)

    def flop_model(self) -> TransformerFlops:
        """Training FLOPs per step (see :mod:`embedlight.utils.flops`): every block weight, frozen or not,
        read from the live model; BERT's [CLS] pooler (unused) is left out."""
        pooler = getattr(self.model, "pooler", None)
        skip = [pooler] if isinstance(pooler, nn.Module) else []
        return transformer_flops(self.model, self.model.config, skip)

    def save_pretrained(self, directory: str, padding_side: str | None = None) -> None:
        """Write the model (safetensors) and tokenizer to ``directory``.

        Args:
            directory: Output folder.
            padding_side: Padding side written into the saved tokenizer (None: this backbone's own).
                The live tokenizer is not changed.
        """
        self.model.save_pretrained(directory, safe_serialization=True)
        tok = copy.deepcopy(self.tokenizer)  # the live tokenizer keeps its side
        tok.padding_side = padding_side or self.padding_side
        tok.save_pretrained(directory)
