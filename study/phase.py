"""The plan's values: a phase (one Tune experiment) and its groups (one dataset x row each), as
the planner builds them and the dry run, the fairness check, the bill and the launcher read them."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from study.spaces import Distribution
from trainables.config import TrialConfig


@dataclass(frozen=True)
class Group:
    """One (phase, dataset, row) of a plan: the fixed config its trials get, their seeds and
    count, and the space a search draws from (the final phase's values come from it)."""

    phase: str
    dataset: str
    row: str
    loss_function: str
    seeds: tuple[int, ...]
    trials: int
    config: TrialConfig
    space: dict[str, Distribution] = field(default_factory=dict)
    budget: int = 0
    exhaustive: bool = False

    def summary(self) -> dict[str, Any]:
        """The dry run's JSON object for this group; a search's config leaves out what it draws,
        and its budget and how it is spent (every configuration once, or sampled) are added."""
        searched = set(self.space) if self.phase == "search" else set()
        plain = self.config.to_dict()
        config = {key: value for key, value in plain.items() if key not in searched | {"seed"}}
        config["loss_params"] = {k: v for k, v in plain["loss_params"].items() if k not in searched}
        spent = {"budget": self.budget, "search": self.spending()} if self.phase == "search" else {}
        return {
            "phase": self.phase,
            "dataset": self.dataset,
            "loss": self.row,
            "loss_function": self.loss_function,
            "seeds": list(self.seeds),
            "trials": self.trials,
            **spent,
            "config": config,
            "space": {name: d.summary() for name, d in self.space.items()},
        }

    def spending(self) -> str:
        """How a search spends its budget: 'exhaustive' (a finite space no larger than the budget,
        every configuration once) or 'sampled'."""
        return "exhaustive" if self.exhaustive else "sampled"


@dataclass(frozen=True)
class Phase:
    """One Tune experiment: its phase's name, its trial count and the searcher that yields its
    trials (called with where a search records groups that ended early); `folder` names the
    experiment when it is not the phase's first (a grown study's `grid+1`, study/growth.py)."""

    name: str
    trials: int
    searcher: Callable[[], Any]
    preview: tuple[str, ...]
    asha: bool = False
    groups: tuple[Group, ...] = ()
    folder: str = ""

    @property
    def experiment(self) -> str:
        """The Tune experiment's name: the folder under the study that holds its trials."""
        return self.folder or self.name
