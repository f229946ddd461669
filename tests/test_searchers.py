"""Searchers: scheduler-stopped trials reach Optuna as pruned, failures as failed, each trial is
told once, groups search independently and take turns, a seed fixes the suggestions, state
survives a save and restore, and no configuration is trained twice: a small finite space is a
grid, a repeated draw is told its original's outcome, and a search that only repeats ends early."""

import math
import pickle

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from common.errors import ConfigError
from study.searchers import (
    GroupedSearch,
    OptunaAskTell,
    SearchGroup,
    given_up,
    optuna_searcher,
    tpe_sampler,
)
from study.spaces import choice, configurations, log_uniform, uniform
from trainables.config import TrialConfig

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


def group(dataset: str, budget: int) -> SearchGroup:
    base = TrialConfig.from_dict({"dataset": dataset, "loss": "gloss", "loss_params": {"gamma": 0.7}})
    return SearchGroup(base, optuna_searcher(SPACE, "tpe", seed=1, max_concurrent=1, budget=budget), budget)


def test_groups_take_turns_within_budgets_and_concurrency(tmp_path):
    search = GroupedSearch([group("r8", 2), group("mr", 1)])
    first, second = search.suggest("t1"), search.suggest("t2")
    assert (first["dataset"], second["dataset"]) == ("r8", "mr")
    assert first["loss_params"]["gamma"] == 0.7 and 0.1 <= first["loss_params"]["sigma"] <= 1.0
    assert "lr" in first and "lr" not in first["loss_params"]
    assert search.suggest("t3") is None, "each group runs one trial at a time"
    search.on_trial_complete("t1", {"best_score": 0.5, "status": "completed"})
    path = tmp_path / "state.pkl"
    search.save(str(path))
    restored = GroupedSearch([])
    restored.restore(str(path))
    assert restored.suggest("t4")["dataset"] == "r8"
    restored.on_trial_complete("t2", {"best_score": 0.5, "status": "completed"})
    restored.on_trial_complete("t4", {"best_score": 0.6, "status": "completed"})
    assert restored.suggest("t5") == Searcher.FINISHED


def drive(search, budget: int, live_at_once: int) -> list[dict]:
    """Run a search as Tune would: up to `live_at_once` trials live, the oldest finishing first,
    scored by a smooth function of their values, until `budget` trials or the searcher finishes.
    Returns every suggested configuration (the trials trained)."""
    trained, live, number = [], [], 0
    while len(trained) < budget:
        params = search.suggest(f"t{number}") if len(live) < live_at_once else None
        if params == Searcher.FINISHED:
            break
        if params is None:
            trial_id, done = live.pop(0)
            score = -sum(abs(v) if isinstance(v, int | float) else len(str(v)) for v in done.values())
            search.on_trial_complete(trial_id, {"best_score": score, "status": "completed"})
            continue
        live.append((f"t{number}", params))
        trained.append(params)
        number += 1
    return trained


def key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def test_a_finite_space_within_the_budget_is_a_grid_trained_once_in_a_seeded_order():
    small = {"lr": choice(1e-5, 2e-5, 3e-5), "gamma": uniform(0.5, 0.7, step=0.1)}
    every = configurations(small, limit=20)
    assert len(every) == 9 and len({key(c) for c in every}) == 9
    orders = {}
    for seed in (0, 0, 1):
        search = optuna_searcher(small, "tpe", seed=seed, max_concurrent=3, budget=20)
        trained = drive(search, budget=20, live_at_once=3)
        assert sorted(map(key, trained)) == sorted(map(key, every)), "each configuration exactly once"
        assert search.suggest("more") == Searcher.FINISHED
        orders.setdefault(seed, []).append(trained)
    assert orders[0][0] == orders[0][1], "the seed fixes the order"
    assert orders[0][0] != orders[1][0], "another seed, another order"
    assert configurations(small, limit=8) is None, "a space larger than the budget is sampled"
    assert configurations({**small, "lr": log_uniform(1e-5, 1e-4)}, limit=100) is None, "continuous"


def test_conditional_parameters_count_only_where_their_condition_holds():
    space = {
        "propagation": choice("harmonic", "spreading"),
        "alpha": uniform(0.5, 0.9, step=0.2, propagation="spreading"),
    }
    assert configurations(space, limit=10) == [
        {"propagation": "harmonic"},
        {"propagation": "spreading", "alpha": 0.5},
        {"propagation": "spreading", "alpha": 0.7},
        {"propagation": "spreading", "alpha": 0.9},
    ]


STEPPED = {"x": uniform(0.0, 1.0, step=0.25), "kind": choice("a", "b", "c")}  # 15 configurations


def plain_tpe(space: dict, budget: int, seed: int) -> list[dict]:
    """The control: Optuna's TPE asked and told without the repeat guard, four trials live."""
    study = optuna.create_study(direction="maximize", sampler=tpe_sampler(seed, budget))
    drawn, live = [], []
    while len(drawn) < budget:
        if len(live) == 4:
            trial = live.pop(0)
            study.tell(trial, -abs(trial.params["x"] - 0.5) - len(trial.params["kind"]))
        trial = study.ask()
        OptunaAskTell(space, optuna.samplers.RandomSampler()).draw(trial)
        live.append(trial)
        drawn.append(trial.params)
    return drawn


def test_tpe_never_trains_a_configuration_twice():
    repeats = [
        len(drawn) - len({key(p) for p in drawn}) for drawn in (plain_tpe(STEPPED, 12, s) for s in range(3))
    ]
    assert all(repeats), f"the control: TPE alone repeats configurations ({repeats})"
    for seed in range(3):
        search = optuna_searcher(STEPPED, "tpe", seed=seed, max_concurrent=4, budget=12)
        trained = drive(search, budget=12, live_at_once=4)
        assert len({key(p) for p in trained}) == len(trained) == 12
        assert {p["x"] for p in trained} <= set(STEPPED["x"].values()), "values as a grid would give them"
    continuous = {"lr": log_uniform(1e-5, 1e-4), "propagation": choice("harmonic", "spreading")}
    trained = drive(optuna_searcher(continuous, "tpe", seed=0, max_concurrent=4, budget=30), 30, 4)
    assert len({key(p) for p in trained}) == len(trained) == 30


def test_a_repeat_is_told_its_originals_outcome_and_a_search_of_repeats_ends_early(tmp_path):
    search = OptunaAskTell({"x": choice(1, 2, 3)}, optuna.samplers.RandomSampler(seed=0))
    first = [search.suggest(f"t{n}") for n in range(3)]
    assert sorted(p["x"] for p in first) == [1, 2, 3]
    search.on_trial_result("t0", {"best_score": 0.4, "training_iteration": 1})
    search.on_trial_complete("t0", {"best_score": 0.5, "status": "completed"})
    before = len(search.study.trials)
    assert search.suggest("t3") == Searcher.FINISHED and search.ended_early
    asked = search.study.trials
    assert len(asked) == before + OptunaAskTell.REASKS + 1, "asked again up to the bound"
    repeats_of_t0 = [t for t in asked[3:] if t.params == first[0]]
    assert repeats_of_t0 and all((t.state, t.value) == (TrialState.COMPLETE, 0.5) for t in repeats_of_t0)
    assert all(t.intermediate_values == {1: 0.4} for t in repeats_of_t0)
    waiting = [t for t in asked[3:] if t.params == first[1]]
    assert waiting and all(t.state == TrialState.RUNNING for t in waiting), "t1 is still training"
    path = tmp_path / "searcher.pkl"
    search.save(str(path))
    restored = OptunaAskTell({}, optuna.samplers.RandomSampler(seed=9))
    restored.restore(str(path))
    restored.on_trial_complete("t1", {"best_score": 0.2, "status": "running"})
    told = [t for t in restored.study.trials[3:] if t.params == first[1]]
    assert all(t.state == TrialState.PRUNED for t in told), "a repeat gets its original's outcome"


def test_a_group_that_ends_early_says_so_and_the_phase_counts_what_it_gave_up(tmp_path, capsys):
    tiny = SearchGroup(
        TrialConfig.from_dict({"dataset": "r8", "loss": "ce"}),
        OptunaAskTell({"lr": choice(1e-5, 2e-5)}, optuna.samplers.RandomSampler(seed=0)),
        budget=5,
    )
    record = tmp_path / "search-ended-early.json"
    search = GroupedSearch([tiny, group("mr", 1)], str(record))
    trained = drive(search, budget=10, live_at_once=1)
    assert len(trained) == 3 and {p["dataset"] for p in trained} == {"r8", "mr"}
    assert search.suggest("later") == Searcher.FINISHED, "Tune is told the phase is over"
    assert "search r8 ce ended after 2 of 5 trials" in capsys.readouterr().out
    assert given_up(str(record)) == 3
    assert given_up(str(tmp_path / "absent.json")) == 0


def test_a_search_saved_before_repeats_were_tracked_resumes_without_repeating(tmp_path):
    search = OptunaAskTell({"x": choice(1, 2, 3)}, optuna.samplers.RandomSampler(seed=0))
    first = [search.suggest(f"t{n}") for n in range(3)]
    old = tmp_path / "old.pkl"
    with old.open("wb") as handle:
        older = {k: v for k, v in vars(search).items() if k not in ("trained", "waiting", "ended_early")}
        pickle.dump(older, handle)
    restored = OptunaAskTell.__new__(OptunaAskTell)  # as Tune unpickles an older searcher
    restored.__dict__.update(older)
    restored.restore(str(old))
    assert sorted(p["x"] for p in first) == [1, 2, 3]
    assert restored.suggest("t3") == Searcher.FINISHED, "the three trained values are known"


def test_a_search_group_saved_with_an_untyped_base_resumes_typed():
    """Searches saved before the base was a TrialConfig hold it as a dict; restored, it is typed."""
    typed = group("r8", 1)
    older = {**vars(typed), "base": typed.base.to_dict()}
    restored = SearchGroup.__new__(SearchGroup)
    restored.__setstate__(pickle.loads(pickle.dumps(older)))
    assert restored.base == typed.base and restored.name() == "r8 gloss"


def test_values_go_where_their_names_belong_and_are_checked():
    base = TrialConfig.from_dict({"dataset": "r8", "loss": "gloss", "loss_params": {"gamma": 0.7}})
    drawn = base.with_values({"lr": 3e-4, "sigma": 0.2})
    assert (drawn.lr, drawn.loss_params.sigma, drawn.loss_params.gamma) == (3e-4, 0.2, 0.7)
    assert drawn == TrialConfig.from_dict(drawn.to_dict()), "a draw survives Ray's dict and back"
    assert base.lr is None, "the base is left as it was"
    with pytest.raises(ConfigError, match="sigma"):
        base.with_values({"sigma": -1.0})
