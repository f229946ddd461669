"""Searchers: scheduler-stopped trials reach Optuna as pruned, groups search independently and
take turns, and state survives a save and restore."""

import math

from optuna.trial import TrialState
from ray.tune.search import Searcher

from study.searchers import BudgetAwareOptunaSearch, GroupedSearch, SearchGroup, optuna_searcher
from study.spaces import SpaceSampler, log_uniform, uniform

SPACE = {"lr": log_uniform(1e-4, 1e-2), "sigma": uniform(0.1, 1.0)}


def optuna_states(search: BudgetAwareOptunaSearch) -> list[TrialState]:
    return [trial.state for trial in search._ot_study.trials]


def test_trials_stopped_by_the_scheduler_are_pruned_not_complete():
    search = BudgetAwareOptunaSearch(space=SpaceSampler(SPACE), metric="best_score", mode="max", seed=0)
    for trial_id in ("finished", "stopped", "diverged"):
        assert set(search.suggest(trial_id)) == {"lr", "sigma"}
    search.on_trial_result("finished", {"best_score": 0.5, "training_iteration": 1})
    search.on_trial_result("stopped", {"best_score": 0.4, "training_iteration": 1})
    search.on_trial_result("diverged", {"best_score": math.nan, "training_iteration": 1})
    search.on_trial_complete("finished", {"best_score": 0.9, "status": "completed"})
    search.on_trial_complete("stopped", {"best_score": 0.4, "status": "running"})
    search.on_trial_complete("diverged", {"best_score": math.nan, "status": "diverged"})
    assert optuna_states(search) == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    finished, stopped, _ = search._ot_study.trials
    assert finished.value == 0.9 and stopped.intermediate_values == {1: 0.4}


def group(name: str, budget: int) -> SearchGroup:
    base = {"dataset": name, "loss": "gloss", "loss_params": {"gamma": 0.7}}
    return SearchGroup(base, optuna_searcher(SPACE, "tpe", seed=1, max_concurrent=1, budget=budget), budget)


def test_groups_take_turns_within_budgets_and_concurrency(tmp_path):
    search = GroupedSearch([group("a", 2), group("b", 1)])
    first, second = search.suggest("t1"), search.suggest("t2")
    assert (first["dataset"], second["dataset"]) == ("a", "b")
    assert first["loss_params"]["gamma"] == 0.7 and 0.1 <= first["loss_params"]["sigma"] <= 1.0
    assert "lr" in first and "lr" not in first["loss_params"]
    assert search.suggest("t3") is None, "each group runs one trial at a time"
    search.on_trial_complete("t1", {"best_score": 0.5, "status": "completed"})
    path = tmp_path / "state.pkl"
    search.save(str(path))
    restored = GroupedSearch([])
    restored.restore(str(path))
    assert restored.suggest("t4")["dataset"] == "a"
    restored.on_trial_complete("t2", {"best_score": 0.5, "status": "completed"})
    restored.on_trial_complete("t4", {"best_score": 0.6, "status": "completed"})
    assert restored.suggest("t5") == Searcher.FINISHED


def test_a_trial_that_diverged_after_scoring_is_pruned_not_complete():
    search = BudgetAwareOptunaSearch(space=SpaceSampler(SPACE), metric="best_score", mode="max", seed=0)
    search.suggest("late")
    search.on_trial_result("late", {"best_score": 0.8, "training_iteration": 1})
    search.on_trial_complete("late", {"best_score": 0.8, "status": "diverged"})
    assert optuna_states(search) == [TrialState.PRUNED], "TPE must not take a diverged score as final"
