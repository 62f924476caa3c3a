"""The Hugging Face side of every backbone: loading a tokenizer and a model, their layer classes, saving.

:class:`HFBackbone` is the base of ``hf_encoder`` and ``hf_decoder``; the functions are the loading
steps they share (dtype names, the tokenizer, ``AutoModel`` weights with the missing-tensor check).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from embedlight.backbones.base import Backbone
from embedlight.backbones.loading import check_loading_info
from embedlight.backbones.resolve import resolve_pretrained
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


def add_eos_post_processor(tokenizer: Any) -> bool:
    """Make a fast tokenizer append [EOS] itself (for sentence-transformers, which cannot be told to).

    Keeps a leading BOS when the tokenizer adds one. Returns False when it already ends with EOS or the
    tokenizer has no Rust backend to edit.
    """
    from tokenizers import processors

    backend = getattr(tokenizer, "backend_tokenizer", None)
    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if backend is None or eos is None:
        return False
    probe = tokenizer("a")["input_ids"]
    if probe and probe[-1] == eos_id:
        return False
    bos, bos_id = tokenizer.bos_token, tokenizer.bos_token_id
    has_bos = bos is not None and probe and probe[0] == bos_id
    head = f"{bos}:0 " if has_bos else ""
    specials = [(eos, eos_id)] + ([(bos, bos_id)] if has_bos else [])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{head}$A:0 {eos}:0", pair=f"{head}$A:0 {eos}:0 $B:1 {eos}:1", special_tokens=specials
    )
    return True


class HFBackbone(Backbone):
    """A ``transformers`` model and its tokenizer as a :class:`~embedlight.backbones.base.Backbone`.

    Subclasses call ``super().__init__(pretrained, tokenizer, trust_remote_code)`` (which loads the
    tokenizer), then :meth:`_load_model`, and set ``self.model`` and ``self.hidden_size``.

    Attributes:
        pretrained: The name or folder it was loaded from (RetroMAE reads its MLM head from there).
        model: The Hugging Face model (adapters included, if any).
    """

    model: nn.Module

    def __init__(self, pretrained: str, tokenizer: str | None, trust_remote_code: bool) -> None:
        super().__init__()
        self.pretrained = pretrained
        self._path = resolve_pretrained(pretrained)
        self.tokenizer = load_hf_tokenizer(self._path, tokenizer, trust_remote_code)

    def _load_model(
        self,
        random_init: bool,
        config_overrides: dict[str, Any] | None,
        dtype: str | None,
        attn_implementation: str | None,
        trust_remote_code: bool,
        cudnn_attention: bool,
    ) -> nn.Module:
        """The ``AutoModel`` of ``pretrained`` (see :func:`load_hf_model`), in training mode."""
        return load_hf_model(
            self.pretrained,
            self._path,
            random_init,
            dict(config_overrides or {}),
            torch_dtype(dtype),
            attn_implementation,
            trust_remote_code,
            cudnn_attention,
        )

    @property
    def base_model(self) -> nn.Module:
        """The transformer stack itself (a wrapper such as LoRA's unwrapped; its layers stay injected)."""
        return self.model

    @property
    def padding_side(self) -> str:
        """``left`` or ``right``: how this backbone's batches are padded (the tokenizer's side)."""
        return str(self.tokenizer.padding_side)

    @property
    def layer_classes(self) -> tuple[type[nn.Module], ...]:
        """This model's transformer-layer classes (FSDP auto-wrap and activation checkpointing)."""
        return transformer_layer_classes(self.base_model)

    def _unused_modules(self) -> list[nn.Module]:
        """Submodules that never run in ``forward`` (left out of the FLOP model)."""
        return []

    def flop_model(self) -> TransformerFlops:
        """Training FLOPs per step (see :mod:`embedlight.utils.flops`): every block weight, frozen or not,
        read from the live model; with LoRA the frozen base weights cost 4 FLOPs per entry and token
        (forward + input gradient), the adapters 6."""
        return transformer_flops(self.model, self.base_model.config, self._unused_modules())

    def _save_weights(self, directory: str) -> None:
        """Write the model's weights and config (safetensors)."""
        self.model.save_pretrained(directory, safe_serialization=True)

    def save_pretrained(self, directory: str, padding_side: str | None = None) -> None:
        """Write the model (safetensors) and the tokenizer to ``directory``.

        When this backbone appends [EOS], the saved tokenizer appends it by itself, so that
        sentence-transformers (which tokenises on its own) pools the same token as training did.

        Args:
            directory: Output folder.
            padding_side: Padding side written into the saved tokenizer (None: this backbone's own).
                The live tokenizer is not changed.
        """
        self._save_weights(directory)
        tok = copy.deepcopy(self.tokenizer)  # the live tokenizer keeps its post-processor and side
        if self.append_eos:
            add_eos_post_processor(tok)
        tok.padding_side = padding_side or self.padding_side
        tok.save_pretrained(directory)
