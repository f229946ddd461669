"""A study resumed from an experiment state that is behind its storage (study/checkpoints.py,
CatchUpWithStorage).

Tune saves its experiment state every so often, so a driver killed between two saves leaves one
in which trials that had finished still read as pending, from checkpoints since deleted or from
none. The test makes that state for certain: it keeps a copy of the state saved while the study
ran, lets the study finish, and puts the copy back, as a kill right after that save would have
left it. Resuming must then train nothing: every trial's records stay byte for byte. The control
resumes the same folder without the catch-up, and trials train again or fail."""

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from analysis import final_results, load_runs
from study import checkpoints
from study.cli import main
from tests.processes import finished_trials, start_gloss

pytestmark = pytest.mark.faults

SPEC = {
    "name": "stale",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    "checkpoint": {"every_epochs": 1},
    "training": {"train_size": 48, "eval_size": 40, "max_length": 32, "epochs": 5, "patience": None},
}
TRIALS = 4


def behind(state: str) -> bool:
    """Whether an experiment state's text holds all the study's trials, some not yet ended."""
    try:
        trials = json.loads(state)["trial_data"]
    except (ValueError, KeyError):
        return False  # caught while being written
    statuses = [json.loads(trial)["status"] for trial, _ in trials]
    return len(statuses) == TRIALS and "TERMINATED" in statuses and statuses.count("TERMINATED") < TRIALS


@pytest.fixture(scope="module")
def finished_with_stale_state(tmp_path_factory, data_dir) -> tuple[Path, Path, list[str]]:
    """A finished study whose experiment state was put back to one saved mid-run; its spec; the
    trials that state holds as not yet ended."""
    tmp = tmp_path_factory.mktemp("stale")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    grid = tmp / "studies" / "stale" / "grid"
    driver = start_gloss(
        ["run", str(spec), "--storage", str(tmp / "studies"), "--data-dir", str(data_dir), "--no-report"],
        tmp / "first.log",
    )
    stale: dict[str, str] = {}
    while driver.poll() is None and not stale:
        for state in grid.glob("experiment_state-*.json"):
            if behind(text := state.read_text()):
                stale[state.name] = text
        time.sleep(0.05)
    assert driver.wait() == 0, (tmp / "first.log").read_text()[-3000:]
    assert stale, "no state was saved while trials ran"
    for name, text in stale.items():
        (grid / name).write_text(text)
    assert len(finished_trials(grid)) == TRIALS
    return grid.parent.parent, spec, unended_in(next(iter(stale.values())))


def unended_in(state: str) -> list[str]:
    """The folders of the trials an experiment state holds as not yet ended."""
    trials = [json.loads(trial) for trial, _ in json.loads(state)["trial_data"]]
    return sorted(trial["relative_logdir"] for trial in trials if trial["status"] != "TERMINATED")


def resume(storage: Path, spec: Path, data_dir: Path) -> int:
    return main(
        ["run", str(spec), "--storage", str(storage), "--data-dir", str(data_dir), "--resume", "--no-report"]
    )


def test_a_resume_from_a_stale_state_trains_no_finished_trial_again(
    finished_with_stale_state, data_dir, tmp_path
):
    studies, spec, _ = finished_with_stale_state
    copy = tmp_path / "studies"
    shutil.copytree(studies, copy)
    before = finished_trials(copy / "stale" / "grid")
    assert resume(copy, spec, data_dir) == 0
    after = finished_trials(copy / "stale" / "grid")
    assert {trial.name: text for trial, text in after.items()} == {t.name: x for t, x in before.items()}


def test_control_without_catching_up_trials_train_again_or_fail(
    finished_with_stale_state, data_dir, tmp_path, monkeypatch
):
    studies, spec, _ = finished_with_stale_state
    copy = tmp_path / "studies"
    shutil.copytree(studies, copy)
    before = finished_trials(copy / "stale" / "grid")
    monkeypatch.setattr(checkpoints, "catch_up", lambda trial, found: None)
    code = resume(copy, spec, data_dir)
    after = finished_trials(copy / "stale" / "grid")
    rerun = [trial.name for trial, text in before.items() if after.get(trial) != text]
    assert code != 0 or rerun, "the stale state resumed cleanly without the catch-up: the test shows nothing"


def test_records_the_killed_driver_had_not_copied_are_restored_from_checkpoints(
    finished_with_stale_state, data_dir, tmp_path
):
    """A trial's result.json in storage cut back to its first two epochs, as a driver killed before
    its next sync leaves it: resumed, the trial ends with its final record (from the record its
    last checkpoint holds), and the analysis reads it as finished with the same scores. Without
    the restoring (monkeypatched away), one run of two left its records ending at epoch 2, still
    running, and the analysis read it as stopped; the other ended completed all the same, which is
    why that is not a control here."""
    studies, spec, unended = finished_with_stale_state
    copy = tmp_path / "studies"
    shutil.copytree(studies, copy)
    grid = copy / "stale" / "grid"
    trial = grid / unended[0]  # its records and its state were last saved together, mid-run
    lines = (trial / "result.json").read_text().splitlines()
    (trial / "result.json").write_text("\n".join(lines[:2]) + "\n")
    assert resume(copy, spec, data_dir) == 0
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    final = json.loads(lines[-1])
    assert [json.dumps(row) for row in rows[:2]] == [json.dumps(json.loads(line)) for line in lines[:2]]
    assert (rows[-1]["epoch"], rows[-1]["status"]) == (final["epoch"], "completed")
    for key in ("best_epoch", "best_score", "selected_test_macro_f1", "selected_test_silhouette"):
        assert rows[-1][key] == final[key], key
    results = final_results(load_runs(copy / "stale"))
    assert (results["outcome"] == "completed").all() and len(results) == TRIALS


def test_an_ended_trials_records_that_never_reached_storage_are_restored(
    finished_with_stale_state, data_dir, tmp_path, monkeypatch
):
    """A trial the state holds as ended whose result.json never reached storage (a driver killed
    while copying its last sync, as test_object_storage_resume.py once met in a bucket): resumed,
    its records end with its final record. The control, with the restoring monkeypatched away,
    leaves it without records, so the analysis has one trial fewer."""
    studies, spec, unended = finished_with_stale_state
    for restores in (True, False):
        copy = tmp_path / str(restores) / "studies"
        shutil.copytree(studies, copy)
        grid = copy / "stale" / "grid"
        trial = next(t for t in sorted(finished_trials(grid)) if t.name not in unended)
        original = (trial / "result.json").read_text().splitlines()
        (trial / "result.json").unlink()
        if not restores:
            monkeypatch.setattr(checkpoints, "restore_missing_records", lambda trial, found: None)
        assert resume(copy, spec, data_dir) == 0
        if not restores:
            assert not (trial / "result.json").exists(), "restored without the restoring: shows nothing"
            continue
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        final = json.loads(original[-1])
        for key in ("epoch", "status", "best_epoch", "best_score", "selected_test_macro_f1"):
            assert rows[-1][key] == final[key], key
        assert len(final_results(load_runs(copy / "stale"))) == TRIALS
