"""Losses, one per file, behind one registry; see `registry.LOSSES`."""

from trainables.losses.base import AuxLoss, AuxParams, LossContext, LossResult, Needs
from trainables.losses.objective import Objective
from trainables.losses.registry import LOSSES, build_aux_loss, loss_entry

__all__ = [
    "LOSSES",
    "AuxLoss",
    "AuxParams",
    "LossContext",
    "LossResult",
    "Needs",
    "Objective",
    "build_aux_loss",
    "loss_entry",
]
