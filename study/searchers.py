"""Tune searchers: a fixed list of trials (grid, ablation, the protocol's final runs) and one
independent Optuna search per dataset x loss behind a single Tune searcher. The Optuna searcher is
our own, over Optuna's public ask-and-tell interface, so it touches no private part of Ray or
Optuna and tells Optuna the truth about trials Tune's scheduler stopped early."""

import math
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import ConcurrencyLimiter, Searcher

from common.records import FINISHED, SEARCH_METRIC, SEARCH_MODE
from study.spaces import Distribution, SpaceSampler, split_params


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
        super().__init__(metric=SEARCH_METRIC, mode=SEARCH_MODE)
        self.configs, self.next = configs, 0

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return self.configs[self.next - 1]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Nothing to learn from a fixed list."""


class OptunaAskTell(PicklingSearcher):
    """One Optuna study behind Tune, through Optuna's public ask-and-tell interface.

    Each suggestion asks the study for a trial and draws the space through it (define-by-run, so
    conditional parameters such as alpha work). Finite scores are reported as intermediate values
    by training iteration. Each trial is told once: COMPLETE with its score when it finished;
    PRUNED when Tune's scheduler stopped it early or it diverged after scoring, so TPE ranks it
    below every finished trial by its last reported value instead of taking a truncated score as
    final; FAIL when it errored or never had a finite score. Metric and mode are fixed here (the
    study maximizes `best_score`), so Tune's `set_search_properties` keeps the default, False.
    Saving pickles everything together (the study with its in-memory storage and seeded sampler,
    the asked trials, the told set), so `--resume` continues the same study and can tell trials
    suggested before the save.
    """

    def __init__(self, space: dict[str, Distribution], sampler: optuna.samplers.BaseSampler) -> None:
        super().__init__(metric=SEARCH_METRIC, mode=SEARCH_MODE)
        self.draw = SpaceSampler(space)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.trials: dict[str, optuna.Trial] = {}  # Tune trial id -> the Optuna trial it runs
        self.told: set[str] = set()
        self.last_step: dict[str, int] = {}  # a trial restarted from a checkpoint repeats epochs

    def suggest(self, trial_id: str) -> dict[str, Any]:
        trial = self.study.ask()
        self.draw(trial)
        self.trials[trial_id] = trial
        return trial.params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        score, step = result.get(self.metric, math.nan), result[TRAINING_ITERATION]
        if trial_id in self.told or not math.isfinite(score) or step <= self.last_step.get(trial_id, 0):
            return  # Optuna keeps the first value of a step and warns about a second
        self.trials[trial_id].report(score, step=step)
        self.last_step[trial_id] = step

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.told:
            return
        self.told.add(trial_id)
        trial, score = self.trials[trial_id], (result or {}).get(self.metric, math.nan)
        if error or not math.isfinite(score):
            self.study.tell(trial, state=TrialState.FAIL)
        elif result.get("status") not in FINISHED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, score)


def optuna_searcher(space: dict, sampler: str, seed: int, max_concurrent: int, budget: int) -> Searcher:
    """A seeded TPE (or random) search over `space`, at most `max_concurrent` trials at a time."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = tpe_sampler(seed, budget) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    return ConcurrencyLimiter(OptunaAskTell(space, chosen), max_concurrent=max_concurrent)


def tpe_sampler(seed: int, budget: int) -> optuna.samplers.TPESampler:
    """TPE for small budgets: random start-up trials a quarter of the budget (3 to 10, not Optuna's
    fixed 10, which leaves a 20-trial search little guided), a joint model of the parameters
    (multivariate, grouped for conditional ones such as alpha), and a constant liar so parallel
    trials do not all propose the same point (bench/search_efficiency.py measures the effect)."""
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
        super().__init__(metric=SEARCH_METRIC, mode=SEARCH_MODE)
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
