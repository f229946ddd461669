"""Tune searchers: a fixed list of trials (grid, ablation, the protocol's final runs) and one
independent Optuna search per dataset x loss behind a single Tune searcher."""

import math
import pickle
from dataclasses import dataclass, field
from typing import Any

from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from study.spaces import SpaceSampler, split_params

METRIC, MODE = "best_score", "max"
FINISHED_STATUSES = ("completed", "early_stopped")  # a diverged trial never wins a search


class PicklingSearcher(Searcher):
    """Save and restore a searcher's whole state, for `gloss run --resume`."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


class FixedTrials(PicklingSearcher):
    """Suggest a given list of complete trial configs, in order, then finish."""

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.configs, self.next = configs, 0

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return self.configs[self.next - 1]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Nothing to learn from a fixed list."""


class BudgetAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna the truth about trials Tune's scheduler stopped early.

    ASHA-stopped and diverged trials are told as PRUNED: TPE ranks them below every finished
    trial, by their last reported value, instead of treating a truncated score as final. Trials
    without a finite score (diverged in their first epoch) are told as FAIL.
    """

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if math.isfinite(result.get(self.metric, math.nan)):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        from optuna.trial import TrialState

        if trial_id in self._completed_trials or not result or error:
            return super().on_trial_complete(trial_id, result, error)
        stopped_early = result.get("status") not in FINISHED_STATUSES
        scored = math.isfinite(result.get(self.metric, math.nan))
        if stopped_early or not scored:
            state = TrialState.PRUNED if stopped_early and scored else TrialState.FAIL
            self._ot_study.tell(self._ot_trials[trial_id], state=state)
            self._completed_trials.add(trial_id)
            return None
        return super().on_trial_complete(trial_id, result, error)


def optuna_searcher(space: dict, sampler: str, seed: int, max_concurrent: int, budget: int) -> Searcher:
    """A seeded TPE (or random) search over `space`, at most `max_concurrent` trials at a time."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = tpe_sampler(seed, budget) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    search = BudgetAwareOptunaSearch(space=SpaceSampler(space), metric=METRIC, mode=MODE, sampler=chosen)
    return ConcurrencyLimiter(search, max_concurrent=max_concurrent)


def tpe_sampler(seed: int, budget: int):
    """TPE for small budgets: random start-up trials a quarter of the budget (3 to 10, not Optuna's
    fixed 10, which leaves a 20-trial search little guided), a joint model of the parameters
    (multivariate, grouped for conditional ones such as alpha), and a constant liar so parallel
    trials do not all propose the same point (bench/search_efficiency.py measures the effect)."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=min(10, max(3, budget // 4)),
            multivariate=True,
            group=True,
            constant_liar=True,
        )


@dataclass
class SearchGroup:
    """One dataset x loss: its fixed base config, its own searcher and its trial budget."""

    base: dict[str, Any]
    searcher: Searcher
    budget: int
    suggested: int = 0
    trial_ids: set = field(default_factory=set)


class GroupedSearch(PicklingSearcher):
    """Run every group's search at once on the cluster, each TPE model seeing only its own
    trials; groups take turns so none starves."""

    def __init__(self, groups: list[SearchGroup]) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.groups, self.turn = groups, 0

    def suggest(self, trial_id: str) -> dict | str | None:
        for offset in range(len(self.groups)):
            index = (self.turn + offset) % len(self.groups)
            group = self.groups[index]
            if group.suggested >= group.budget:
                continue
            params = group.searcher.suggest(trial_id)
            if params is None or params == Searcher.FINISHED:
                continue
            group.suggested += 1
            group.trial_ids.add(trial_id)
            self.turn = index + 1
            return merge_params(group.base, params)
        exhausted = all(group.suggested >= group.budget for group in self.groups)
        return Searcher.FINISHED if exhausted else None

    def _owner(self, trial_id: str) -> Searcher:
        return next(g.searcher for g in self.groups if trial_id in g.trial_ids)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._owner(trial_id).on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._owner(trial_id).on_trial_complete(trial_id, result=result, error=error)


def merge_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A full trial config: the group's base with drawn values in their proper places."""
    top, own = split_params(base["loss"], params)
    return {**base, **top, "loss_params": {**base.get("loss_params", {}), **own}}
