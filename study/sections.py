"""The sections of a study spec below its top level: a row of the comparison, the search, the
checkpoint policy, the ablation and a trial's resources, each a frozen pydantic model whose
checks report every problem at its key path."""

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from common.errors import suggest
from common.validation import (
    Boolean,
    Integer,
    Number,
    SpecModel,
    Text,
    WrittenModel,
    problem,
    refuse,
    validated_at,
)
from study.settings import row_params_model, searchable
from study.spaces import DistributionSpec
from trainables.losses import LOSSES
from trainables.losses.registry import unknown_loss


class Resources(SpecModel):
    """Per trial; fractions of a GPU share one card (without memory isolation)."""

    cpu: Number = 1.0
    gpu: Number = 0.0

    @field_validator("cpu")
    @classmethod
    def _some_cpu(cls, cpu: float) -> float:
        if not cpu > 0:
            raise ValueError(f"{cpu} must be > 0, e.g. 1.")
        return cpu

    @field_validator("gpu")
    @classmethod
    def _no_negative_gpu(cls, gpu: float) -> float:
        if not gpu >= 0:
            raise ValueError(f"{gpu} must be >= 0 (0: no GPU, 0.5: half a card, 1: one card).")
        return gpu


def row_name(name: str) -> str:
    """A row's name names its folders and records: letters, digits and _ - + . only."""
    if not re.fullmatch(r"[\w+.\-]+", name):
        raise ValueError(f"'{name}' may hold only letters, digits and '_', '-', '+', '.', e.g. gloss_o+ce.")
    return name


def registry_row(name: str) -> str:
    """A `losses` entry written as a bare name: a registry loss, row named after it."""
    if name not in LOSSES:
        raise ValueError(unknown_loss(name))
    return name


class Method(WrittenModel):
    """One row of the comparison: a registry loss (`loss`, default the row's `name`) at fixed
    `params` (its own parameters and any trial setting; never searched), with `space` overriding
    the loss's default search distributions (null removes one)."""

    name: Text
    loss: Text = ""
    params: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, DistributionSpec | None] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        return row_name(name)

    @model_validator(mode="after")
    def _typed_for_its_loss(self) -> "Method":
        object.__setattr__(self, "loss", self.loss or self.name)
        if self.loss not in LOSSES:
            where = ("loss",) if "loss" in self.model_fields_set else ()
            refuse("Method", [problem(where, unknown_loss(self.loss))])
        typed = validated_at(row_params_model(self.loss), self.params, ("params",))
        object.__setattr__(self, "params", typed.written())
        known = searchable(self.loss)
        refuse(
            "Method",
            [
                problem(("space", name), f"loss {self.loss} has no setting {name}{suggest(name, known)}.")
                for name in self.space
                if name not in known
            ],
        )
        return self


class SearchSettings(SpecModel):
    """Optuna through Ray Tune, one independent search per dataset x row, each with `trials`.

    `lr` is the learning-rate distribution every row searches (default: the fidelity's range;
    `training.lr` fixes it instead). `seed` is the seed search trials train on and the Optuna
    samplers derive theirs from; in a protocol it defaults to one above the largest of `seeds`
    and may name one of them only with `reuse_seed: true` (the report then says so); in a search
    alone it defaults to the first of `seeds`. `space` overrides distributions per row."""

    trials: Integer = 16
    losses: tuple[Text, ...] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    max_concurrent: Integer = 2
    scheduler: Literal["none", "asha"] = "none"
    grace_period: Integer = 2
    reduction_factor: Integer = 3
    seed: Integer | None = None
    reuse_seed: Boolean = False
    lr: DistributionSpec | None = None
    space: dict[Text, dict[Text, DistributionSpec | None]] = Field(default_factory=dict)

    @field_validator("trials", "max_concurrent", "grace_period")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"{value} must be at least 1.")
        return value

    @field_validator("reduction_factor")
    @classmethod
    def _at_least_two(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"{value} must be at least 2.")
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, seed: int | None) -> int | None:
        if seed is not None and seed < 0:
            raise ValueError(f"{seed} is negative; seeds are integers >= 0.")
        return seed


class CheckpointPolicy(SpecModel):
    """How trials checkpoint, and what of it storage keeps.

    A trial checkpoints at the end of an epoch: with `max_share` (by default 0.05) once its last
    checkpoint's cost is at most that share of the time since it, so checkpointing takes at most
    5% of a trial's time whatever the model, epoch length or storage; after every
    `every_epochs`-th epoch (null by default; 1 for a state every epoch); after any epoch that ends
    `every_minutes` or more after its last checkpoint (each may be null, not all three). A trial
    restarted after a crash redoes the epochs since its last checkpoint (their records then
    appear twice; the analysis reads each epoch once). With `optimizer: false` a state holds the
    weights without Adam's moments (a third of the bytes of a fine-tuned encoder's state), and a
    restarted trial starts the moments afresh. Tune keeps the newest `keep` checkpoints per trial
    (2 by default); a resumed study restarts each trial from its newest checkpoint in storage. With
    `delete_finished`, a trial's last epoch writes no trainer state and, once the trial ends
    (finished, or stopped by ASHA), the trainer state (weights, optimizer moments) is deleted from
    its checkpoints in storage: its records keep the best epoch's metrics, and test embeddings
    saved with `training.save_embeddings` stay. Trials that ended in an error keep their state, so
    `--resume` continues them."""

    every_epochs: Integer | None = None
    every_minutes: Number | None = None
    max_share: Number | None = 0.05
    keep: Integer = 2
    delete_finished: Boolean = True
    optimizer: Boolean = True

    @field_validator("every_epochs")
    @classmethod
    def _epochs(cls, every: int | None) -> int | None:
        if every is not None and every < 1:
            raise ValueError(f"{every} must be at least 1, or null.")
        return every

    @field_validator("every_minutes")
    @classmethod
    def _minutes(cls, every: float | None) -> float | None:
        if every is not None and not every > 0:
            raise ValueError(f"{every} must be positive, or null.")
        return every

    @field_validator("max_share")
    @classmethod
    def _share(cls, share: float | None) -> float | None:
        if share is not None and not 0 < share < 1:
            raise ValueError(f"{share} must be in (0, 1), e.g. 0.05, or null.")
        return share

    @field_validator("keep")
    @classmethod
    def _keep(cls, keep: int) -> int:
        if keep < 1:
            raise ValueError(f"{keep} must be at least 1.")
        return keep

    @model_validator(mode="after")
    def _some_cadence(self) -> "CheckpointPolicy":
        if self.every_epochs is None and self.every_minutes is None and self.max_share is None:
            raise ValueError(
                "every_epochs, every_minutes and max_share are all null; set one, or a restarted trial "
                "starts over."
            )
        return self

    def trial_settings(self) -> dict[str, Any]:
        """The TrialConfig fields that carry this policy to every trial."""
        return {
            "checkpoint_every_epochs": self.every_epochs,
            "checkpoint_every_minutes": self.every_minutes,
            "checkpoint_max_share": self.max_share,
            "checkpoint_final_state": not self.delete_finished,
            "checkpoint_optimizer": self.optimizer,
        }


class AblationSettings(SpecModel):
    """One factor at a time around the base configuration of row `loss` (a row of the study, or
    a registry loss at its defaults); each factor lists its levels, a level a value or a mapping
    that sets several parameters at once (alpha with spreading propagation)."""

    loss: Text = "gloss"
    factors: dict[Text, tuple[Any, ...]] = Field(default_factory=dict)
