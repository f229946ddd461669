"""Search spaces: distributions as a spec writes them (each loss declares its defaults beside its
parameters, LossEntry.space), the space a row searches, and the Optuna define-by-run sampler
that draws from it."""

import dataclasses
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from common.validation import Number, WrittenModel, problem, refuse
from trainables.losses import loss_entry

KINDS = ("log_uniform", "uniform", "int", "choice")


@dataclass(frozen=True)
class Distribution:
    """One searched parameter: a continuous range, an integer range, or a list of choices;
    `when` makes it conditional on other parameters' values (alpha only for spreading)."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    step: float | None = None
    when: dict[str, Any] = field(default_factory=dict)

    def suggest(self, trial, name: str) -> Any:
        """Draw this parameter through an Optuna trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        return trial.suggest_float(name, self.low, self.high, log=self.kind == "log_uniform", step=self.step)

    def values(self) -> tuple | None:
        """Every value this distribution can take, as Optuna draws them (a stepped range rounds to
        low + i x step), or None for a continuous range."""
        if self.kind == "choice":
            return self.choices
        if self.kind == "int":
            return tuple(range(int(self.low), int(self.high) + 1))
        if self.kind == "uniform" and self.step:
            count = math.floor((self.high - self.low) / self.step + 1e-8) + 1
            return tuple(self.low + i * self.step for i in range(count))
        return None

    def extremes(self) -> tuple:
        """The values that bound this distribution (checked against the loss before trials)."""
        return self.choices if self.kind == "choice" else (self.low, self.high)

    def describe(self) -> str:
        """One phrase for messages and the dry run, e.g. 'uniform [0.5, 0.9] step 0.1'."""
        values = list(self.choices) if self.kind == "choice" else [self.low, self.high]
        step = f" step {self.step:g}" if self.step else ""
        when = "".join(f" when {key}={value}" for key, value in self.when.items())
        return f"{self.kind} {values}{step}{when}"

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: type (float, int, categorical), low, high, log, choices."""
        categorical = self.kind == "choice"
        kind = "categorical" if categorical else "int" if self.kind == "int" else "float"
        return {
            "type": kind,
            "low": None if categorical else self.low,
            "high": None if categorical else self.high,
            "log": self.kind == "log_uniform",
            "choices": list(self.choices) if categorical else None,
            "step": self.step,
            "when": dict(self.when),
        }


def log_uniform(low: float, high: float, **when: Any) -> Distribution:
    return Distribution("log_uniform", low, high, when=when)


def uniform(low: float, high: float, step: float | None = None, **when: Any) -> Distribution:
    return Distribution("uniform", low, high, step=step, when=when)


def choice(*choices: Any) -> Distribution:
    return Distribution("choice", choices=choices)


class DistributionSpec(WrittenModel):
    """A searched parameter as a spec writes it: exactly one of {log_uniform: [low, high]},
    {uniform: [low, high], step: s}, {int: [low, high]} or {choice: [...]}, with an optional
    `when: {param: value}` that draws it only where other parameters hold those values."""

    log_uniform: tuple[Number, Number] | None = None
    uniform: tuple[Number, Number] | None = None
    int: tuple[Number, Number] | None = None
    choice: list[Any] | None = None
    step: Number | None = None
    when: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> "DistributionSpec":
        if len([kind for kind in KINDS if getattr(self, kind) is not None]) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}.")
        refuse("DistributionSpec", self._bad_values())
        return self

    @property
    def kind(self) -> str:
        """log_uniform, uniform, int or choice: the one the spec wrote."""
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    def _bad_values(self) -> list:
        kind, values = self.kind, getattr(self, self.kind)
        if kind == "choice":
            return [] if values else [problem((kind,), "give a non-empty list of choices.")]
        low, high = values
        if not (math.isfinite(low) and math.isfinite(high) and low < high) or (
            kind == "log_uniform" and low <= 0
        ):
            return [problem((kind,), "need 0 < low < high for log_uniform, low < high otherwise.")]
        return []

    def distribution(self) -> Distribution:
        """The distribution this entry describes."""
        if self.kind == "choice":
            return Distribution(self.kind, choices=tuple(self.choice), when=dict(self.when))
        low, high = getattr(self, self.kind)
        return Distribution(self.kind, low, high, step=self.step, when=dict(self.when))


LEARNING_RATE = {"full": log_uniform(1e-5, 1e-4), "frozen": log_uniform(2e-4, 5e-3)}


def default_space(loss: str) -> dict[str, Distribution]:
    """The search distributions registry loss `loss` declares for its parameters (LossEntry.space)."""
    declared = loss_entry(loss).space
    return {name: DistributionSpec.model_validate(d).distribution() for name, d in declared.items()}


def search_space(
    loss: str,
    lr: Distribution | None,
    overrides: dict[str, Distribution | None],
    fixed: Collection[str],
    values: dict[str, Any],
) -> dict[str, Distribution]:
    """The space searched for one row of registry loss `loss`: `lr` (None when fixed), the loss's
    default distributions except the parameters the spec fixes (`fixed`), then `overrides` (None
    removes a parameter). A conditional parameter whose condition holds another value in the
    row's config (`values`: its loss parameters and settings) is dropped (alpha under harmonic
    propagation), and so are k choices at or above the batch size."""
    space = {"lr": lr} if lr is not None else {}
    space |= {name: d for name, d in default_space(loss).items() if name not in fixed}
    for name, distribution in overrides.items():
        if distribution is None:
            space.pop(name, None)
        else:
            space[name] = distribution
    space = {name: d for name, d in space.items() if possible(d, space, values)}
    batch_size = values["batch_size"]
    if "k" in space and space["k"].kind == "choice":
        below = tuple(k for k in space["k"].choices if k is None or k < batch_size)
        space["k"] = dataclasses.replace(space["k"], choices=below)
    return space


def possible(distribution: Distribution, space: dict[str, Distribution], values: dict[str, Any]) -> bool:
    """Whether a conditional parameter can ever be drawn: each condition is searched, or holds
    the value it asks for."""
    return all(key in space or values.get(key) == value for key, value in distribution.when.items())


def configurations(space: dict[str, Distribution], limit: int) -> list[dict[str, Any]] | None:
    """Every configuration of a finite space, each a dict of drawn values in drawing order (a
    conditional parameter only where its condition holds), or None when the space is continuous
    or holds more than `limit` configurations."""
    partial: list[dict[str, Any]] = [{}]
    for name, distribution in space.items():
        values = distribution.values()
        grown = []
        for drawn in partial:
            if not all(drawn.get(key) == value for key, value in distribution.when.items()):
                grown.append(drawn)
            elif values is None:
                return None
            else:
                grown += [{**drawn, name: value} for value in values]
        if len(grown) > limit:
            return None
        partial = grown
    return partial


@dataclass(frozen=True)
class SpaceSampler:
    """An Optuna define-by-run function over a space (a picklable object, so Ray can save it)."""

    space: dict[str, Distribution]

    def __call__(self, trial) -> None:
        drawn: dict[str, Any] = {}
        for name, distribution in self.space.items():
            if all(drawn.get(key) == value for key, value in distribution.when.items()):
                drawn[name] = distribution.suggest(trial, name)
