"""The registry of losses: name -> parameters, constructor and default search space. Adding a loss
is its file (parameters, module, SPACE), one entry here, and a test against a reference."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from common.errors import ConfigError, suggest
from trainables.losses import contrastive, cosine_mse, gloss, supcon, triplet
from trainables.losses.base import AuxLoss, AuxParams, CEParams, ControlParams, LossContext, Needs
from trainables.losses.contrastive import ContrastiveLoss, ContrastiveParams
from trainables.losses.cosine_mse import CosineMSELoss, CosineMSEParams
from trainables.losses.gloss import GLoss, GLossParams
from trainables.losses.supcon import SupConLoss, SupConParams
from trainables.losses.triplet import TripletLoss, TripletParams


@dataclass(frozen=True)
class LossEntry:
    """A loss's parameter class and its constructor (None for cross-entropy alone), what it asks
    of the loop when it has no constructor to declare it, and its default search space: each of
    its parameters a search tunes, written as a spec writes a distribution ({log_uniform: [lo,
    hi]}, {uniform: [lo, hi], step: s}, {int: [lo, hi]}, {choice: [...]}, optionally with
    `when: {param: value}`); required, so no loss reaches a search without one ({} for none)."""

    params: type[AuxParams] | type[CEParams] | type[ControlParams]
    build: Callable[..., AuxLoss] | None = None
    summary: str = ""
    declared: Needs = field(default_factory=Needs)
    space: Mapping[str, Mapping] = field(kw_only=True)

    @property
    def needs(self) -> Needs:
        """What the loss asks of the batches and of the training loop."""
        return self.build.needs if self.build is not None else self.declared


LOSSES: dict[str, LossEntry] = {
    "ce": LossEntry(CEParams, None, "cross-entropy on a linear head", space={}),
    "none": LossEntry(
        ControlParams,
        None,
        "control: the untrained encoder, read by the same head or probe",
        Needs(trains_body=False),
        space={},  # the head's (or probe's) learning rate only
    ),
    "contrastive": LossEntry(
        ContrastiveParams, ContrastiveLoss, "margin contrastive (Hadsell 2006)", space=contrastive.SPACE
    ),
    "cosine_mse": LossEntry(
        CosineMSEParams, CosineMSELoss, "the authors' Cos-Sim pair MSE", space=cosine_mse.SPACE
    ),
    "triplet": LossEntry(TripletParams, TripletLoss, "batch-all Euclidean triplet", space=triplet.SPACE),
    "supcon": LossEntry(SupConParams, SupConLoss, "supervised contrastive (Khosla 2020)", space=supcon.SPACE),
    "gloss": LossEntry(GLossParams, GLoss, "G-Loss: graph label propagation", space=gloss.SPACE),
}


def loss_entry(name: str) -> LossEntry:
    """The registry entry for `name`, or a ConfigError naming the known losses."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"loss: {unknown_loss(name)}") from None


def unknown_loss(name: str) -> str:
    """The sentence refusing loss `name`, with the closest registry name and the choices."""
    return f"unknown loss '{name}'{suggest(name, LOSSES)}; choose one of {', '.join(LOSSES)}."


def build_aux_loss(
    name: str, params: AuxParams | CEParams | ControlParams, context: LossContext
) -> AuxLoss | None:
    """The auxiliary loss module for `name`, or None for plain cross-entropy."""
    entry = loss_entry(name)
    return entry.build(params, context) if entry.build is not None else None
