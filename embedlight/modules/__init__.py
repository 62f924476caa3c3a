"""The LightningModules (one per recipe); each receives its backbone/pooler/loss as injected modules."""

from embedlight.modules.contrastive import ContrastiveModule

__all__ = ["ContrastiveModule"]
