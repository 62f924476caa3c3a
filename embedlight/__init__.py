"""embedlight: train text-embedding models (RetroMAE, contrastive, ICL) with Lightning and Hydra."""

from embedlight.utils.hardware import register_resolvers

register_resolvers()
