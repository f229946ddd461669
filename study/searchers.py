"""Tune searchers: a fixed list of trials (grid, ablation, the protocol's final runs) and one
independent Optuna search per dataset x loss behind a single Tune searcher. The Optuna searcher is
our own, over Optuna's public ask-and-tell interface, so it touches no private part of Ray or
Optuna and tells Optuna the truth about trials Tune's scheduler stopped early."""

import json
import math
import pickle
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import ConcurrencyLimiter, Searcher

from common.records import FINISHED, SEARCH_METRIC, SEARCH_MODE
from common.storage import exists, read_bytes, write_bytes
from study.naming import config_key, folder_name, resume_in_folder
from study.spaces import Distribution, SpaceSampler, configurations
from trainables.config import TrialConfig


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
        self.configs = configs
        self.given: dict[str, int] = {}  # Tune trial id -> the index of the config it runs

    def restore(self, checkpoint_path: str) -> None:
        """Restore a saved list; one saved by an older gloss counted the configs it gave."""
        super().restore(checkpoint_path)
        if "given" not in vars(self):
            self.given = {f"given-{index}": index for index in range(vars(self).pop("next"))}

    def suggest(self, trial_id: str) -> dict | str | None:
        taken = set(self.given.values())
        index = next((i for i in range(len(self.configs)) if i not in taken), None)
        if index is None:
            return Searcher.FINISHED
        self.given[trial_id] = index
        return self.configs[index]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Nothing to learn from a fixed list."""

    def reconcile(self, trials: dict[str, "RestoredTrial"]) -> None:
        """Give exactly the configs of the trials Tune restored (see RestoredSearch); a config
        whose trial Tune lost is given again, into the lost trial's folder."""
        for trial_id, index in self.given.items():
            if trial_id not in trials and index >= 0:
                resume_in_folder(self.configs[index], folder_name(self.configs[index], trial_id))
        free: dict[str, list[int]] = {}
        for index, config in enumerate(self.configs):
            free.setdefault(config_key(config), []).append(index)
        self.given = {}
        for trial_id, trial in trials.items():
            indices = free.get(config_key(trial.config), [])
            self.given[trial_id] = indices.pop(0) if indices else -1  # -1: a config not listed


class OptunaAskTell(PicklingSearcher):
    """One Optuna study behind Tune, through Optuna's public ask-and-tell interface.

    Each suggestion asks the study for a trial and draws the space through it (define-by-run, so
    conditional parameters such as alpha work). Finite scores are reported as intermediate values
    by training iteration. Each trial is told once: COMPLETE with its score when it finished;
    PRUNED when Tune's scheduler stopped it early or it diverged after scoring, so TPE ranks it
    below every finished trial by its last reported value instead of taking a truncated score as
    final; FAIL when it errored or never had a finite score. Metric and mode are fixed here (the
    study maximizes `best_score`), so Tune's `set_search_properties` keeps the default, False.

    A configuration is trained once: a draw equal to one already suggested (the group trains on
    one seed, so equal values mean an equal result) is told that trial's outcome, at once or when
    it ends, and the study is asked again, at most `REASKS` times in a row; then the search ends
    early (`ended_early`) rather than train a repeat. `queued` configurations (a grid, in its
    order) are suggested first, through Optuna's enqueue_trial.

    Saving pickles everything together (the study with its in-memory storage and seeded sampler,
    the asked trials, the told set, the duplicates waiting for an outcome), so `--resume`
    continues the same study and can tell trials suggested before the save.
    """

    REASKS = 20

    def __init__(
        self,
        space: dict[str, Distribution],
        sampler: optuna.samplers.BaseSampler,
        queued: list[dict[str, Any]] = (),
    ) -> None:
        super().__init__(metric=SEARCH_METRIC, mode=SEARCH_MODE)
        self.draw = SpaceSampler(space)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        for params in queued:
            self.study.enqueue_trial(params)
        self.trials: dict[str, optuna.Trial] = {}  # Tune trial id -> the Optuna trial it runs
        self.told: set[str] = set()
        self.last_step: dict[str, int] = {}  # a trial restarted from a checkpoint repeats epochs
        self.trained: dict[tuple, str] = {}  # drawn values -> the Tune trial that trains them
        self.waiting: dict[str, list[optuna.Trial]] = {}  # running trial id -> its repeats
        self.ended_early = False
        self.adopted: set[str] = set()  # trials Tune restored that this study never asked for

    def restore(self, checkpoint_path: str) -> None:
        """Restore a saved search; one saved before repeats were tracked (an older gloss) learns
        what it trained from its trials."""
        super().restore(checkpoint_path)
        if "trained" not in vars(self):
            self.trained = {tuple(sorted(t.params.items())): tid for tid, t in self.trials.items()}
            self.waiting, self.ended_early = {}, False
        vars(self).setdefault("adopted", set())

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        for _ in range(self.REASKS + 1):
            if self.ended_early:
                break
            trial = self.study.ask()
            self.draw(trial)
            key = tuple(sorted(trial.params.items()))
            if key not in self.trained:
                self.trained[key] = trial_id
                self.trials[trial_id] = trial
                return trial.params
            self.repeat(trial, self.trained[key])
        self.ended_early = True
        return Searcher.FINISHED

    def repeat(self, trial: optuna.Trial, original: str) -> None:
        """Tell a repeated draw its original's outcome, or keep it until the original ends (it
        stays running meanwhile, so a constant liar steers away from it as from the original)."""
        if original in self.adopted:
            self.study.tell(trial, state=TrialState.FAIL)  # no Optuna outcome to copy; not trained
        elif original in self.told:
            self.tell_as(trial, self.trials[original])
        else:
            self.waiting.setdefault(original, []).append(trial)

    def tell_as(self, repeat: optuna.Trial, original: optuna.Trial) -> None:
        """Tell `repeat` exactly what `original` was told: its intermediate values, state, value."""
        told = self.study.get_trials(deepcopy=False)[original.number]
        for step, value in told.intermediate_values.items():
            repeat.report(value, step=step)
        if told.state == TrialState.COMPLETE:
            self.study.tell(repeat, told.value)
        else:
            self.study.tell(repeat, state=told.state)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        score, step = result.get(self.metric, math.nan), result[TRAINING_ITERATION]
        if trial_id in self.told | self.adopted or not math.isfinite(score):
            return
        if step <= self.last_step.get(trial_id, 0):
            return  # Optuna keeps the first value of a step and warns about a second
        self.trials[trial_id].report(score, step=step)
        self.last_step[trial_id] = step

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.told or trial_id in self.adopted:
            return
        self.told.add(trial_id)
        trial, score = self.trials[trial_id], (result or {}).get(self.metric, math.nan)
        if error or not math.isfinite(score):
            self.study.tell(trial, state=TrialState.FAIL)
        elif result.get("status") not in FINISHED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, score)
        for repeat in self.waiting.pop(trial_id, []):
            self.tell_as(repeat, trial)

    def forget(self, trial_id: str) -> dict[str, Any]:
        """A trial asked for but lost with a stale experiment state: told FAIL, its draw queued
        again (asked next), its repeats failed, so the search continues as if never asked.
        Returns its draw."""
        drawn = {key: tid for key, tid in self.trained.items() if tid == trial_id}
        params = dict(next(iter(drawn)))
        if trial_id in self.trials and trial_id not in self.told:
            self.study.tell(self.trials[trial_id], state=TrialState.FAIL)
        self.study.enqueue_trial(params)
        self.trained = {key: tid for key, tid in self.trained.items() if tid != trial_id}
        for repeat in self.waiting.pop(trial_id, []):
            self.study.tell(repeat, state=TrialState.FAIL)
        self.trials.pop(trial_id, None)
        self.adopted.discard(trial_id)
        self.last_step.pop(trial_id, None)
        return params

    def adopt(self, trial_id: str, values: dict[str, Any]) -> None:
        """A trial Tune restored that this study never asked for (its saved state is older than
        Tune's): it trains and counts as a draw of `values`, which is not trained again; Optuna
        does not learn its score."""
        self.trained[tuple(sorted(values.items()))] = trial_id
        self.adopted.add(trial_id)


def optuna_searcher(space: dict, sampler: str, seed: int, max_concurrent: int, budget: int) -> Searcher:
    """A seeded search over `space`, at most `max_concurrent` trials at a time: a grid (every
    configuration once, in an order the seed shuffles) when the space is finite and no larger than
    `budget`, else TPE (or random) sampling."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = configurations(space, budget)
    if grid is not None:
        order = np.random.default_rng(seed).permutation(len(grid))
        search = OptunaAskTell(space, optuna.samplers.RandomSampler(seed=seed), [grid[i] for i in order])
    else:
        chosen = tpe_sampler(seed, budget) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed)
        search = OptunaAskTell(space, chosen)
    return ConcurrencyLimiter(search, max_concurrent=max_concurrent)


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


@dataclass(frozen=True)
class RestoredTrial:
    """A trial as Tune's restored experiment state holds it: its config and whether it ended."""

    config: dict[str, Any]
    ended: bool


def innermost(searcher: Searcher) -> Searcher:
    """The searcher inside any ConcurrencyLimiter."""
    while isinstance(searcher, ConcurrencyLimiter):
        searcher = searcher.searcher
    return searcher


def set_live(searcher: Searcher, live: set[str]) -> None:
    """Make a ConcurrencyLimiter count exactly `live` as its trials still to end."""
    if isinstance(searcher, ConcurrencyLimiter):
        searcher.live_trials, searcher.num_unfinished_live_trials = set(live), len(live)


@dataclass
class SearchGroup:
    """One dataset x loss: its fixed base config, its own searcher and its trial budget (the
    configurations of a grid, else the search's budget)."""

    base: TrialConfig
    searcher: Searcher
    budget: int
    suggested: int = 0
    trial_ids: set = field(default_factory=set)
    ended_early: bool = False

    def __setstate__(self, state: dict) -> None:
        """A search saved by gloss before the base was typed holds it as a dict."""
        if isinstance(state["base"], dict):
            state["base"] = TrialConfig.from_dict(state["base"])
        self.__dict__.update(state)

    def name(self) -> str:
        return f"{self.base.dataset} {self.base.method}"

    def holds(self, config: dict[str, Any]) -> bool:
        """Whether a trial config belongs to this group's search."""
        return (config.get("dataset"), config.get("method")) == (self.base.dataset, self.base.method)

    def forget(self, trial_id: str) -> None:
        """A trial Tune lost: asked for again, into its folder."""
        self.suggested -= 1
        self.trial_ids.discard(trial_id)
        params = innermost(self.searcher).forget(trial_id)
        config = self.base.with_values(params).to_dict()
        resume_in_folder(config, folder_name(config, trial_id))

    def adopt(self, trial_id: str, config: dict[str, Any]) -> None:
        self.suggested += 1
        self.trial_ids.add(trial_id)
        search = innermost(self.searcher)
        values = {name: drawn_value(config, name) for name in search.draw.space}
        search.adopt(trial_id, {name: value for name, value in values.items() if value is not None})


def drawn_value(config: dict[str, Any], name: str) -> Any:
    """The value a searched parameter has in a trial config: a loss parameter or a setting."""
    return config["loss_params"].get(name, config.get(name))


class GroupedSearch(PicklingSearcher):
    """Run every group's search at once on the cluster, each TPE model seeing only its own
    trials; groups take turns so none starves. A group whose searcher ends early is announced
    and written to `record` (a file or URI), so the phase counts the trials it gave up."""

    record: str | None = None  # a search saved by an older gloss has none

    def __init__(self, groups: list[SearchGroup], record: str | None = None) -> None:
        super().__init__(metric=SEARCH_METRIC, mode=SEARCH_MODE)
        self.groups, self.turn, self.record = groups, 0, record

    def suggest(self, trial_id: str) -> dict | str | None:
        for offset in range(len(self.groups)):
            index = (self.turn + offset) % len(self.groups)
            group = self.groups[index]
            if group.suggested >= group.budget or group.ended_early:
                continue
            params = group.searcher.suggest(trial_id)
            if params == Searcher.FINISHED:
                self.end_early(group)
                continue
            if params is None:
                continue
            group.suggested += 1
            group.trial_ids.add(trial_id)
            self.turn = index + 1
            return group.base.with_values(params).to_dict()  # the one conversion at Ray's boundary
        exhausted = all(group.suggested >= group.budget or group.ended_early for group in self.groups)
        return Searcher.FINISHED if exhausted else None

    def end_early(self, group: SearchGroup) -> None:
        """Say that a group's search stopped before its budget, and record it."""
        group.ended_early = True
        print(
            f"gloss: search {group.name()} ended after {group.suggested} of {group.budget} trials: its "
            f"sampler proposed only configurations already trained, {OptunaAskTell.REASKS + 1} times "
            "in a row",
            flush=True,
        )
        if self.record:
            ended = [
                {"group": g.name(), "trials": g.suggested, "budget": g.budget}
                for g in self.groups
                if g.ended_early
            ]
            write_bytes(self.record, json.dumps({"ended_early": ended}, indent=2).encode())

    def reconcile(self, trials: dict[str, RestoredTrial]) -> None:
        """Agree with the trials Tune restored (see RestoredSearch): suggestions Tune lost are
        forgotten, to be asked again; trials it kept that no group knows are adopted by theirs;
        each group's limiter counts its unended trials."""
        for group in self.groups:
            for trial_id in group.trial_ids - trials.keys():
                group.forget(trial_id)
        known = {trial_id for group in self.groups for trial_id in group.trial_ids}
        for trial_id, trial in trials.items():
            owner = next((g for g in self.groups if g.holds(trial.config)), None)
            if trial_id not in known and owner is not None:
                owner.adopt(trial_id, trial.config)
        for group in self.groups:
            set_live(group.searcher, {t for t in group.trial_ids if not trials[t].ended})

    def _owner(self, trial_id: str) -> Searcher:
        return next(g.searcher for g in self.groups if trial_id in g.trial_ids)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._owner(trial_id).on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._owner(trial_id).on_trial_complete(trial_id, result=result, error=error)


def given_up(record: str) -> int:
    """Trials a search phase gave up by ending groups early, from its record (0 without one)."""
    if not exists(record):
        return 0
    ended = json.loads(read_bytes(record))["ended_early"]
    return sum(group["budget"] - group["trials"] for group in ended)
