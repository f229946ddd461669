"""A resumed phase whose saved searcher state and trial states come from two different snapshots
(study/restored_search.py): the trial states are the truth. Suggestions Tune lost are asked again
into the lost trial's folder, trials Tune kept that the searcher never gave are adopted, and the
search generator's count and the concurrency limiter's live trials follow the trials.

The end-to-end fault (a driver SIGKILLed while Tune copied its snapshot to a bucket) is
tests/test_object_storage_resume.py; test_a_lost_trial_resumes_in_its_folder below makes the
mismatch for certain on a local study, with a control."""

import json
import pickle
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator

from study import checkpoints, naming, restored_search
from study.cli import main
from study.naming import RESUMED_FOLDERS, folder_name
from study.restored_search import RestoredSearch, reconcile_restored_search
from study.searchers import FixedTrials, GroupedSearch, RestoredTrial, SearchGroup, optuna_searcher
from study.spaces import choice, uniform
from tests.processes import finished_trials, start_gloss
from trainables.config import TrialConfig


@pytest.fixture(autouse=True)
def no_resumed_folders():
    RESUMED_FOLDERS.clear()
    yield
    RESUMED_FOLDERS.clear()


def configs(n: int) -> list[dict]:
    return [
        TrialConfig.from_dict({"dataset": "r8", "loss": "ce", "seed": seed}).to_dict() for seed in range(n)
    ]


def as_restored(config: dict, ended: bool = False) -> RestoredTrial:
    """A config as it comes back from Tune's JSON experiment state."""
    return RestoredTrial(json.loads(json.dumps(config)), ended)


def test_a_fixed_list_gives_again_the_configs_tune_lost_and_not_those_it_kept():
    search, listed = FixedTrials(configs(4)), configs(4)
    given = [search.suggest(f"t{i}") for i in range(3)]
    assert given == listed[:3]
    search.reconcile({"t0": as_restored(listed[0], True), "t1": as_restored(listed[1])})
    assert search.suggest("t5") == listed[2], "t2's config, lost with it, is given again"
    assert {naming.config_key(listed[2]): folder_name(listed[2], "t2")} == RESUMED_FOLDERS
    assert search.suggest("t6") == listed[3]
    assert search.suggest("t7") == Searcher.FINISHED


def test_a_fixed_list_adopts_a_trial_it_never_gave():
    search, listed = FixedTrials(configs(3)), configs(3)
    search.suggest("t0")
    search.reconcile({"t0": as_restored(listed[0]), "t1": as_restored(listed[1])})
    assert search.suggest("t2") == listed[2], "the config t1 runs is not given twice"
    assert search.suggest("t3") == Searcher.FINISHED
    assert RESUMED_FOLDERS == {}


def gloss_group(budget: int) -> SearchGroup:
    base = TrialConfig.from_dict({"dataset": "r8", "loss": "gloss", "loss_params": {"gamma": 0.7}})
    space = {"lr": choice(1e-3, 2e-3, 3e-3), "sigma": uniform(0.1, 1.0)}
    return SearchGroup(
        base, optuna_searcher(space, "random", seed=1, max_concurrent=2, budget=budget), budget
    )


def test_a_search_asks_again_for_a_lost_draw_and_its_limiter_counts_the_trials_tune_has():
    search = GroupedSearch([gloss_group(3)])
    first, second = search.suggest("t0"), search.suggest("t1")
    assert search.suggest("t2") is None, "two live at once"
    search.reconcile({"t0": as_restored(first)})
    assert search.groups[0].suggested == 1
    assert search.suggest("t3") == second, "the lost draw is asked again, first"
    assert {naming.config_key(second): folder_name(second, "t1")} == RESUMED_FOLDERS
    assert search.suggest("t4") is None, "t0 and t3 live"
    search.on_trial_complete("t0", {"best_score": 0.5, "status": "completed"})
    third = search.suggest("t5")
    assert third not in (first, second)
    assert search.suggest("t6") == Searcher.FINISHED


def test_a_search_adopts_a_trial_tune_kept_and_does_not_train_its_draw_again():
    """A grid of three learning rates: Tune kept a trial of one the searcher had not given yet."""
    base = TrialConfig.from_dict({"dataset": "r8", "loss": "ce"})
    grid = SearchGroup(base, optuna_searcher({"lr": choice(1e-3, 2e-3, 3e-3)}, "tpe", 1, 2, 3), 3)
    search = GroupedSearch([grid])
    first = search.suggest("t0")
    kept = {**first, "lr": 3e-3 if first["lr"] != 3e-3 else 1e-3}
    search.reconcile({"t0": as_restored(first, True), "t1": as_restored(kept)})
    assert grid.suggested == 2 and "t1" in grid.trial_ids
    search.on_trial_result("t1", {"best_score": 0.4, "training_iteration": 1})
    search.on_trial_complete("t1", {"best_score": 0.4, "status": "completed"})
    third = search.suggest("t2")
    assert {first["lr"], kept["lr"], third["lr"]} == {1e-3, 2e-3, 3e-3}, "each learning rate once"
    assert search.suggest("t3") == Searcher.FINISHED


def tune_trial(trial_id: str, config: dict, status: str) -> SimpleNamespace:
    """What reconcile_restored_search reads of a Tune trial."""
    return SimpleNamespace(trial_id=trial_id, config=config, status=status, TERMINATED="TERMINATED")


def test_restored_search_follows_the_trials_tune_restored_not_its_own_counters(tmp_path):
    """Saved after all four trials were created; Tune restored two, one ended."""
    listed = configs(4)
    saved = RestoredSearch(ConcurrencyLimiter(FixedTrials(listed), max_concurrent=1))
    saved._total_samples = 4
    limiter = saved.searcher
    for i in range(4):
        limiter.suggest(f"t{i}")
        limiter.on_trial_complete(f"t{i}", {"best_score": 0.5})
    saved._counter, saved._finished = 4, True
    saved.save_to_dir(str(tmp_path), session_str="s")

    resumed = RestoredSearch(ConcurrencyLimiter(FixedTrials(listed), max_concurrent=1))
    assert resumed.has_checkpoint(str(tmp_path))
    resumed.restore_from_dir(str(tmp_path))
    assert resumed.is_finished(), "as saved, until Tune's trials are handed over"
    reconcile_restored_search(
        [tune_trial("t0", listed[0], "TERMINATED"), tune_trial("t1", listed[1], "PENDING")]
    )
    assert (resumed._counter, resumed.is_finished()) == (2, False)
    assert resumed.searcher.live_trials == {"t1"}
    assert resumed.searcher.suggest("t4") is None, "t1 still to end, one at a time"
    resumed.searcher.on_trial_complete("t1", {"best_score": 0.5})
    assert resumed.searcher.suggest("t4") == listed[2]
    reconcile_restored_search([])  # handed over once: nothing waits now
    assert resumed._counter == 2


SPEC = {
    "name": "lost",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    "checkpoint": {"every_epochs": 1},
    "training": {"train_size": 48, "eval_size": 40, "max_length": 32, "epochs": 5, "patience": None},
}


def two_trials_one_ended(state: str) -> bool:
    try:
        trials = [json.loads(trial) for trial, _ in json.loads(state)["trial_data"]]
    except (ValueError, KeyError):
        return False  # caught while being written
    return len(trials) == 2 and [t["status"] for t in trials].count("TERMINATED") == 1


@pytest.fixture(scope="module")
def finished_with_a_state_missing_trials(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    """A finished study (one trial at a time) whose experiment state was put back to one saved
    when it held two of its four trials: the searcher's state, saved at the end, has given all
    four, as a driver killed while copying a snapshot leaves them."""
    tmp = tmp_path_factory.mktemp("lost")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    grid = tmp / "studies" / "lost" / "grid"
    args = ["run", str(spec), "--storage", str(tmp / "studies"), "--data-dir", str(data_dir)]
    driver = start_gloss([*args, "--no-report", "--max-concurrent", "1"], tmp / "first.log")
    stale: dict[str, str] = {}
    while driver.poll() is None and not stale:
        for state in grid.glob("experiment_state-*.json"):
            if two_trials_one_ended(text := state.read_text()):
                stale[state.name] = text
        time.sleep(0.05)
    assert driver.wait() == 0, (tmp / "first.log").read_text()[-3000:]
    assert stale, "no state was saved with two trials"
    for name, text in stale.items():
        (grid / name).write_text(text)
    assert len(finished_trials(grid)) == 4
    return tmp / "studies", spec


@pytest.mark.faults
def test_a_lost_trial_resumes_in_its_folder(finished_with_a_state_missing_trials, data_dir, tmp_path):
    """Resumed, the phase ends with its four trials, each in its one folder, none trained again."""
    studies, spec = finished_with_a_state_missing_trials
    copy = tmp_path / "studies"
    shutil.copytree(studies, copy)
    grid = copy / "lost" / "grid"
    before = finished_trials(grid)
    args = ["run", str(spec), "--storage", str(copy), "--data-dir", str(data_dir), "--resume", "--no-report"]
    assert main([*args, "--max-concurrent", "1"]) == 0
    after = finished_trials(grid)
    assert {t.name: text for t, text in after.items()} == {t.name: text for t, text in before.items()}
    assert len(list(grid.glob("*/result.json"))) == 4, "no trial in a second folder"


@pytest.mark.faults
def test_control_without_reconciling_the_phase_ends_short(
    finished_with_a_state_missing_trials, data_dir, tmp_path, monkeypatch
):
    studies, spec = finished_with_a_state_missing_trials
    copy = tmp_path / "studies"
    shutil.copytree(studies, copy)
    for name in ("has_checkpoint", "restore_from_dir"):  # Tune's own: no reconciling
        monkeypatch.setattr(restored_search.RestoredSearch, name, getattr(SearchGenerator, name))
    args = ["run", str(spec), "--storage", str(copy), "--data-dir", str(data_dir), "--resume", "--no-report"]
    assert main([*args, "--max-concurrent", "1"]) == 130, "the state missing trials resumed cleanly"


def given_two(path: Path) -> bool:
    """Whether a saved FixedTrials state has given exactly two trials."""
    try:
        return len(pickle.loads(path.read_bytes())["given"]) == 2
    except (pickle.UnpicklingError, EOFError, KeyError):
        return False


@pytest.fixture(scope="module")
def finished_with_a_whole_snapshot_behind(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    """A finished study whose whole snapshot (trial states, search generator and searcher, all
    saved when two of its four trials were given) was put back: the other two trials' folders
    are in storage, known to no state, as a driver killed while copying a sync can leave them."""
    tmp = tmp_path_factory.mktemp("orphans")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "name": "orphans"}))
    grid = tmp / "studies" / "orphans" / "grid"
    args = ["run", str(spec), "--storage", str(tmp / "studies"), "--data-dir", str(data_dir)]
    driver = start_gloss([*args, "--no-report", "--max-concurrent", "1"], tmp / "first.log")
    snapshot: dict[str, bytes] = {}
    while driver.poll() is None and not snapshot:
        states = list(grid.glob("experiment_state-*.json"))
        searchers = list(grid.glob("searcher-state-*.pkl"))
        if states and searchers and two_trials_one_ended(states[0].read_text()) and given_two(searchers[0]):
            snapshot = {path.name: path.read_bytes() for path in grid.glob("*-*") if path.is_file()}
        time.sleep(0.05)
    assert driver.wait() == 0, (tmp / "first.log").read_text()[-3000:]
    assert snapshot, "no snapshot was saved with two trials given"
    for name, data in snapshot.items():
        (grid / name).write_bytes(data)
    assert len(finished_trials(grid)) == 4
    return tmp / "studies", spec


@pytest.mark.faults
@pytest.mark.parametrize("adopting", [True, False], ids=["adopting", "control"])
def test_trial_folders_no_state_knows_are_continued_not_trained_beside(
    finished_with_a_whole_snapshot_behind, data_dir, tmp_path, monkeypatch, adopting
):
    """Resumed, the two trials no state knows are given again and continue in their folders
    (ending at once): 4 folders, records byte for byte. The control, without adopting them, trains
    them again in new folders beside the old."""
    studies, spec = finished_with_a_whole_snapshot_behind
    copy = tmp_path / "studies"
    shutil.copytree(studies, copy)
    grid = copy / "orphans" / "grid"
    before = finished_trials(grid)
    if not adopting:
        monkeypatch.setattr(checkpoints, "adopt_orphans", lambda trials: None)
    args = ["run", str(spec), "--storage", str(copy), "--data-dir", str(data_dir), "--resume", "--no-report"]
    assert main([*args, "--max-concurrent", "1"]) == 0
    folders = len(list(grid.glob("*/result.json")))
    if adopting:
        after = finished_trials(grid)
        assert {t.name: text for t, text in after.items()} == {t.name: text for t, text in before.items()}
        assert folders == 4
    else:
        assert folders == 6, "the control trained no trial again: the test shows nothing"
