"""Fully sharded data parallel (FSDP) for models that do not fit one GPU with DDP.

Lightning offers FSDP1 (``FSDPStrategy``) and FSDP2 (``fully_shard`` through ``ModelParallelStrategy``).
embedlight uses ``FSDPStrategy``: it takes the wrap and activation-checkpointing units as a set of
layer classes, so the LightningModules stay strategy-agnostic (``ModelParallelStrategy`` needs each
module's ``configure_model`` to shard its own layers), it writes sharded checkpoints that
``Trainer.fit(ckpt_path=...)`` resumes, and with ``use_orig_params=True`` it shards LoRA models whose
frozen and trainable weights share a layer. The layer classes come from the backbone
(``backbone.layer_classes``, e.g. ``BertLayer``, ``LlamaDecoderLayer``): nothing here names a model.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def layer_classes(model: nn.Module) -> set[type[nn.Module]]:
    """The transformer-layer classes reported by the backbone inside ``model`` (a LightningModule)."""
    for m in model.modules():
        classes = getattr(type(m), "layer_classes", None)
        if classes is not None:
            return set(m.layer_classes)
    raise ValueError(
        f"{type(model).__name__} holds no backbone that reports its layer_classes (needed by FSDP)"
    )


def fsdp_strategy(
    model: nn.Module,
    activation_checkpointing: bool = True,
    state_dict_type: str = "sharded",
    sharding_strategy: str = "FULL_SHARD",
    use_orig_params: bool = True,
    **kwargs: Any,
) -> Any:
    """Lightning's ``FSDPStrategy`` wrapping (and optionally checkpointing) each transformer layer.

    Args:
        model: The LightningModule; its backbone reports the layer classes.
        activation_checkpointing: Recompute each layer's activations in backward (then leave the
            backbone's own ``gradient_checkpointing`` off).
        state_dict_type: ``sharded`` (each rank writes its shard; resumable) or ``full``.
        sharding_strategy: ``FULL_SHARD``, ``SHARD_GRAD_OP``, ``HYBRID_SHARD`` or ``NO_SHARD``.
        use_orig_params: Keep the original parameters visible (needed for LoRA's frozen/trainable mix
            within one layer, and for per-parameter weight-decay groups).
        **kwargs: Passed to ``FSDPStrategy`` (``cpu_offload``, ``limit_all_gathers``, ...).

    Returns:
        A ``lightning.pytorch.strategies.FSDPStrategy``.
    """
    from lightning.pytorch.strategies import FSDPStrategy

    classes = layer_classes(model)
    return FSDPStrategy(
        auto_wrap_policy=classes,
        activation_checkpointing_policy=classes if activation_checkpointing else None,
        state_dict_type=state_dict_type,
        sharding_strategy=sharding_strategy,
        use_orig_params=use_orig_params,
        **kwargs,
    )


def build_strategy(spec: Any, model: nn.Module) -> Any:
    """``trainer.strategy`` as configured: a name (``ddp``, ``auto``) as is, a ``_target_`` node built with ``model``."""
    from collections.abc import Mapping

    from hydra.utils import instantiate

    if isinstance(spec, Mapping) and "_target_" in spec:
        return instantiate(spec, model=model)
    return spec
