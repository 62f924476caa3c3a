"""Losses: one file each, registered in the ``loss`` group (see :mod:`embedlight.registry`)."""

from embedlight.losses.cosent import CoSENTLoss
from embedlight.losses.infonce import InfoNCELoss

__all__ = ["InfoNCELoss", "CoSENTLoss"]
