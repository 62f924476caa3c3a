"""embedlight: train text-embedding models (RetroMAE, contrastive, ICL) with Lightning and Hydra."""

from embedlight.hardware import register_resolvers

register_resolvers()
