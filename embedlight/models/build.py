"""The one place an embedder is built from a composed config: for training (``training.run.build``)
and for loading a run's checkpoint (``models.load``), which both read the same three keys.

* ``backbone``: a registered backbone (``backbone=hf_encoder backbone.pretrained=...``);
* ``pooler``: a registered pooler (``pooler=mean``), bound to the backbone's width by the embedder;
* ``embedder``: normalisation, default prompts and the inference token limit.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

from embedlight.backbones.base import Backbone
from embedlight.models.embedder import Embedder


def build_backbone(cfg: Any) -> Backbone:
    """Instantiate ``cfg.backbone`` and check that it keeps the backbone contract."""
    backbone = instantiate(cfg.backbone)
    if not isinstance(backbone, Backbone):
        raise TypeError(
            f"backbone: {cfg.backbone.get('_target_')} built a {type(backbone).__name__}, not an "
            "embedlight.backbones.base.Backbone (register one with @register('backbone', name))"
        )
    return backbone


def build_embedder(cfg: Any, backbone: Backbone | None = None) -> Embedder:
    """``Embedder(backbone, pooler, **cfg.embedder)`` from a composed config.

    Args:
        cfg: A composed ``embedlight-train`` config (or a run's ``.hydra/config.yaml``) with
            ``backbone``, ``pooler`` and ``embedder``.
        backbone: An already built backbone to use instead of ``cfg.backbone``.

    Raises:
        ValueError: ``pooler`` is null (naming the key).
    """
    if cfg.get("pooler") is None:
        raise ValueError(
            "pooler is null, but an embedder pools the backbone's states: set pooler=<name> (e.g. pooler=mean)"
        )
    backbone = build_backbone(cfg) if backbone is None else backbone
    return instantiate(cfg.embedder, backbone=backbone, pooler=instantiate(cfg.pooler))
