"""Poolers: one file each, registered in the ``pooler`` group (see :mod:`embedlight.registry`)."""

from embedlight.poolers.base import Pooler
from embedlight.poolers.cls import CLSPooler
from embedlight.poolers.last_token import LastTokenPooler
from embedlight.poolers.mean import MeanPooler
from embedlight.poolers.weighted_mean import WeightedMeanPooler

__all__ = ["Pooler", "CLSPooler", "MeanPooler", "WeightedMeanPooler", "LastTokenPooler"]
