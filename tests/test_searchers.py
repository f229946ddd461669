"""Searchers: scheduler-stopped trials reach Optuna as pruned, failures as failed, each trial is
told once, groups search independently and take turns, a seed fixes the suggestions, and state
survives a save and restore."""

import math

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from study.searchers import GroupedSearch, OptunaAskTell, SearchGroup, optuna_searcher, tpe_sampler
from study.spaces import log_uniform, uniform

SPACE = {"lr": log_uniform(1e-4, 1e-2), "sigma": uniform(0.1, 1.0)}


def states(search: OptunaAskTell) -> list[TrialState]:
    return [trial.state for trial in search.study.trials]


def random_search() -> OptunaAskTell:
    return OptunaAskTell(SPACE, optuna.samplers.RandomSampler(seed=0))


def test_each_trial_is_told_once_complete_pruned_or_failed():
    search = random_search()
    names = ("finished", "stopped", "diverged", "errored", "unstarted")
    for trial_id in names:
        assert set(search.suggest(trial_id)) == {"lr", "sigma"}
    search.on_trial_result("finished", {"best_score": 0.5, "training_iteration": 1})
    search.on_trial_result("stopped", {"best_score": 0.4, "training_iteration": 1})
    search.on_trial_result("diverged", {"best_score": math.nan, "training_iteration": 1})
    search.on_trial_result("errored", {"best_score": 0.3, "training_iteration": 1})
    search.on_trial_complete("finished", {"best_score": 0.9, "status": "completed"})
    search.on_trial_complete("stopped", {"best_score": 0.4, "status": "running"})
    search.on_trial_complete("diverged", {"best_score": math.nan, "status": "diverged"})
    search.on_trial_complete("errored", error=True)
    search.on_trial_complete("unstarted")
    expected = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL, TrialState.FAIL]
    assert states(search) == expected
    finished, stopped, diverged, errored, _ = search.study.trials
    assert finished.value == 0.9 and finished.intermediate_values == {1: 0.5}
    assert stopped.value == 0.4 and stopped.intermediate_values == {1: 0.4}, "ranked by its last value"
    assert diverged.intermediate_values == {}, "a non-finite score is never reported"
    assert errored.value is None and errored.intermediate_values == {1: 0.3}
    search.on_trial_result("finished", {"best_score": 0.95, "training_iteration": 2})
    search.on_trial_complete("finished", {"best_score": 0.95, "status": "completed"})
    search.on_trial_complete("stopped", {"best_score": 0.8, "status": "completed"})
    assert states(search) == expected, "a trial is told once"
    assert search.study.trials[0].value == 0.9 and search.study.trials[0].intermediate_values == {1: 0.5}


def test_epochs_a_restarted_trial_repeats_are_reported_once_without_a_warning(recwarn):
    search = random_search()
    search.suggest("restarted")
    for step, score in [(1, 0.2), (2, 0.3), (3, 0.4), (2, 0.31), (3, 0.41), (4, 0.5)]:
        search.on_trial_result("restarted", {"best_score": score, "training_iteration": step})
    assert search.study.trials[0].intermediate_values == {1: 0.2, 2: 0.3, 3: 0.4, 4: 0.5}
    assert not [w for w in recwarn if "already reported" in str(w.message)]


def test_a_trial_that_diverged_after_scoring_is_pruned_not_complete():
    search = random_search()
    search.suggest("late")
    search.on_trial_result("late", {"best_score": 0.8, "training_iteration": 1})
    search.on_trial_complete("late", {"best_score": 0.8, "status": "diverged"})
    assert states(search) == [TrialState.PRUNED], "TPE must not take a diverged score as final"


def tpe_search(seed: int) -> OptunaAskTell:
    return OptunaAskTell(SPACE, tpe_sampler(seed, budget=4))  # 3 random trials, then TPE


def run_trials(search: OptunaAskTell, ids: range) -> list[dict]:
    """Suggest and finish one trial per id, scored by a smooth function of its parameters."""
    drawn = []
    for number in ids:
        params = search.suggest(f"t{number}")
        score = 1 - abs(math.log10(params["lr"]) + 3) / 2 - abs(params["sigma"] - 0.5)
        search.on_trial_complete(f"t{number}", {"best_score": score, "status": "completed"})
        drawn.append(params)
    return drawn


def test_the_same_seed_gives_the_same_suggestions():
    first, again, other = (run_trials(tpe_search(seed), range(8)) for seed in (3, 3, 4))
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_a_restored_search_continues_the_same_study(tmp_path):
    uninterrupted = tpe_search(5)
    expected = [*run_trials(uninterrupted, range(4)), uninterrupted.suggest("open")]
    uninterrupted.on_trial_result("open", {"best_score": 0.2, "training_iteration": 1})
    uninterrupted.on_trial_complete("open", {"best_score": 0.3, "status": "completed"})
    expected += run_trials(uninterrupted, range(4, 7))

    search = tpe_search(5)
    before = [*run_trials(search, range(4)), search.suggest("open")]
    search.on_trial_result("open", {"best_score": 0.2, "training_iteration": 1})
    path = tmp_path / "searcher.pkl"
    search.save(str(path))
    restored = OptunaAskTell({}, optuna.samplers.RandomSampler(seed=99))
    restored.restore(str(path))
    assert states(restored) == [TrialState.COMPLETE] * 4 + [TrialState.RUNNING]
    restored.on_trial_complete("open", {"best_score": 0.3, "status": "completed"})
    last = restored.study.trials[-1]
    assert (last.state, last.value, last.intermediate_values) == (TrialState.COMPLETE, 0.3, {1: 0.2})
    after = run_trials(restored, range(4, 7))
    assert before + after == expected, "the restored TPE sees the earlier trials and its own random state"
    assert len(restored.study.trials) == 8


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
