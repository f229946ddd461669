"""The trial settings a spec may fix, typed from the trial's own dataclasses: `training` (the
user-facing TrialConfig fields), each loss's parameters under `loss_params`, and a row's
`params` (its loss's parameters and any training setting). Values are checked against their
types here, at load time; ranges and combinations by TrialConfig and the loss's class when the
plan builds each trial."""

import dataclasses
import functools
from typing import ClassVar

from pydantic import create_model

from common.validation import SpecModel, WrittenModel, model_of
from trainables.config import TrialConfig
from trainables.losses import LOSSES, loss_entry

ROW_OWNED = ("dataset", "loss", "method", "loss_params", "seed", "study", "phase", "tags")
POLICY = tuple(f.name for f in dataclasses.fields(TrialConfig) if f.name.startswith("checkpoint_"))
TOP_LEVEL = ("model", "fidelity")
INTERNAL = (*ROW_OWNED, *POLICY, *TOP_LEVEL)


class Settings(WrittenModel):
    """Settings where a key of the trial config that the spec sets elsewhere is named as such."""

    moved_keys: ClassVar[dict[str, str]] = {
        **{
            key: "set it through the checkpoint section, e.g. checkpoint: {every_epochs: 2}."
            for key in POLICY
        },
        **{key: f"set it once at the top of the spec ({key}: ...), for every row." for key in TOP_LEVEL},
        "seed": "list seeds at the top of the spec, e.g. seeds: [0, 1, 2].",
        "dataset": "list datasets at the top of the spec, e.g. datasets: [r8].",
        "loss_params": "set a loss's parameters under loss_params: {LOSS: {...}} or in a row's params.",
    }


TrainingSettings = model_of(TrialConfig, exclude=INTERNAL, name="TrainingSettings", base=Settings)
TrainingSettings.__doc__ = (
    "Trial settings every row shares (a row's `params` may override one, a declared difference). "
    "See trainables/config.py TrialConfig for each setting."
)


class RowSettings(Settings):
    """A row's own settings: the study sets the row-owned keys for every row."""

    moved_keys: ClassVar[dict[str, str]] = {
        **Settings.moved_keys,
        **{key: f"a row cannot set {key}; the study sets it for every row." for key in ROW_OWNED},
    }


@functools.cache
def params_model(loss: str) -> type[SpecModel]:
    """The typed parameters of registry loss `loss`, as `loss_params.<loss>` takes them."""
    params = loss_entry(loss).params
    return model_of(params, name=f"{params.__name__}Settings", base=WrittenModel)


@functools.cache
def row_params_model(loss: str) -> type[SpecModel]:
    """What a row of loss `loss` may fix in `params`: the loss's parameters and training settings."""
    params = loss_entry(loss).params
    return model_of(params, name=f"{params.__name__}Row", base=row_base())


@functools.cache
def row_base() -> type[SpecModel]:
    return model_of(TrialConfig, exclude=INTERNAL, name="RowTrainingSettings", base=RowSettings)


def searchable(loss: str) -> set[str]:
    """The names a row of loss `loss` may fix or search: its parameters and training settings."""
    return set(row_params_model(loss).model_fields)


def loss_params_section() -> type[SpecModel]:
    """`loss_params:`, one optional entry per registry loss, so a misspelt loss name is refused."""
    fields = {name: (params_model(name) | None, None) for name in LOSSES}
    return create_model("LossParams", __base__=WrittenModel, __doc__=LOSS_PARAMS_DOC, **fields)


LOSS_PARAMS_DOC = "Parameters of a registry loss for every row of that loss (a row's `params` override them)."
LossParams = loss_params_section()


def loss_params_of(section: SpecModel, loss: str) -> dict:
    """The parameters `loss_params` fixes for registry loss `loss` (those the user wrote)."""
    entry = getattr(section, loss, None)
    return entry.written() if entry is not None else {}
