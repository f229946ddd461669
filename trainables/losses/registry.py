"""The registry of losses: name -> parameters and constructor. Adding a loss is one entry."""

from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import ConfigError
from common.typed import suggest
from trainables.losses.base import AuxLoss, AuxParams, CEParams, ControlParams, LossContext, Needs
from trainables.losses.contrastive import ContrastiveLoss, ContrastiveParams
from trainables.losses.cosine_mse import CosineMSELoss, CosineMSEParams
from trainables.losses.gloss import GLoss, GLossParams
from trainables.losses.supcon import SupConLoss, SupConParams
from trainables.losses.triplet import TripletLoss, TripletParams


@dataclass(frozen=True)
class LossEntry:
    """A loss's parameter class and its constructor (None for cross-entropy alone), and what it
    asks of the loop when it has no constructor to declare it."""

    params: type[AuxParams] | type[CEParams] | type[ControlParams]
    build: Callable[..., AuxLoss] | None = None
    summary: str = ""
    declared: Needs = field(default_factory=Needs)

    @property
    def needs(self) -> Needs:
        """What the loss asks of the batches and of the training loop."""
        return self.build.needs if self.build is not None else self.declared


LOSSES: dict[str, LossEntry] = {
    "ce": LossEntry(CEParams, None, "cross-entropy on a linear head"),
    "none": LossEntry(
        ControlParams,
        None,
        "control: the untrained encoder, read by the same head or probe",
        Needs(trains_body=False),
    ),
    "contrastive": LossEntry(ContrastiveParams, ContrastiveLoss, "margin contrastive (Hadsell 2006)"),
    "cosine_mse": LossEntry(CosineMSEParams, CosineMSELoss, "the authors' Cos-Sim pair MSE"),
    "triplet": LossEntry(TripletParams, TripletLoss, "batch-all Euclidean triplet"),
    "supcon": LossEntry(SupConParams, SupConLoss, "supervised contrastive (Khosla 2020)"),
    "gloss": LossEntry(GLossParams, GLoss, "G-Loss: graph label propagation"),
}


def loss_entry(name: str) -> LossEntry:
    """The registry entry for `name`, or a ConfigError naming the known losses."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(
            f"loss: unknown loss '{name}'{suggest(name, LOSSES)}; choose one of {', '.join(LOSSES)}."
        ) from None


def build_aux_loss(
    name: str, params: AuxParams | CEParams | ControlParams, context: LossContext
) -> AuxLoss | None:
    """The auxiliary loss module for `name`, or None for plain cross-entropy."""
    entry = loss_entry(name)
    return entry.build(params, context) if entry.build is not None else None
