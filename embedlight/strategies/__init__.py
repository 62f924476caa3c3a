"""Distributed strategies built from the injected model (``trainer.strategy`` configs with a ``_target_``)."""

from embedlight.strategies.fsdp import build_strategy, fsdp_strategy

__all__ = ["build_strategy", "fsdp_strategy"]
