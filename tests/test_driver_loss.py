"""Driver loss: `gloss run` killed (SIGINT, SIGKILL) at several points; `gloss run --resume`
completes without rerunning a finished trial, and the final results equal an uninterrupted run."""

import json
import signal
from pathlib import Path

import pytest
import yaml

from analysis import final_results, load_runs
from tests.processes import finished_trials, records, start_gloss, uninterrupted_run, wait_for

pytestmark = pytest.mark.faults  # a minute each: `make test-cluster` runs them

# 60 epochs: seconds per trial even on a fast machine, so that a signal sent once a trial's
# records show it finished lands before the rest have (at 6 epochs, all four trials of a grid
# once finished within one experiment sync, and the SIGINT found the study ended).
TRAINING = {"train_size": 120, "eval_size": 60, "max_length": 32, "epochs": 60, "patience": None}
GRID = {
    "name": "killed",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    "training": TRAINING,
}
PROTOCOL = {
    **GRID,
    "name": "killed-protocol",
    "kind": "protocol",
    "seeds": [0, 1],
    "differences": ["budget"],
    "search": {"losses": ["gloss"], "trials": 2, "max_concurrent": 1},
}


def run_killed_then_resumed(
    spec: dict, tmp_path, data_dir, sig: int, phase: str, after: int, folders: dict[str, int]
) -> None:
    """Start the study, send `sig` once `after` trials of `phase` finished, resume to the end;
    then each phase holds exactly `folders[phase]` trial folders (a trial run again, even into a
    new folder, is caught here, not hidden by the analysis' de-duplication)."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = [
        "run",
        str(path),
        "--storage",
        str(tmp_path),
        "--data-dir",
        str(data_dir),
        "--max-concurrent",
        "1",
    ]
    study = tmp_path / spec["name"]
    driver = start_gloss(args, tmp_path / "first.log")
    wait_for(lambda: len(finished_trials(study / phase)) >= after, 240, f"{after} finished {phase} trials")
    before = {**finished_trials(study / "search"), **finished_trials(study / phase)}
    driver.send_signal(sig)
    code = driver.wait(timeout=120)
    if sig == signal.SIGINT:
        assert code == 130 and "--resume" in (tmp_path / "first.log").read_text()
    resumed = start_gloss([*args, "--resume"], tmp_path / "second.log")
    assert resumed.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-3000:]
    for trial, text in before.items():
        assert (trial / "result.json").read_text() == text, f"{trial.name} was rerun"
    found = {name: len(list((study / name).glob("*/result.json"))) for name in folders}
    assert found == folders, "one folder per planned trial"
    assert "duplicate" not in (tmp_path / "second.log").read_text()


def check_final_results(study_folder, data_dir) -> None:
    """Every final trial completed, with the metrics of the same config run uninterrupted."""
    final = final_results(load_runs(study_folder))
    final = final[final["phase"] != "search"]
    assert len(final) == 4 and (final["outcome"] == "completed").all()
    for row in final.itertuples():
        config = json.loads((Path(row.trial_dir) / "params.json").read_text())
        expected = uninterrupted_run(config, data_dir)["selected_test_macro_f1"]
        assert row.selected_test_macro_f1 == pytest.approx(expected, abs=1e-12), row.trial_dir


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_killed_grid_resumes_without_rerunning_finished_trials(sig, tmp_path, data_dir):
    run_killed_then_resumed(GRID, tmp_path, data_dir, sig, "grid", after=1, folders={"grid": 4})
    check_final_results(tmp_path / "killed", data_dir)


def test_protocol_killed_in_its_final_phase_resumes(tmp_path, data_dir):
    folders = {"search": 2, "final": 4}
    run_killed_then_resumed(PROTOCOL, tmp_path, data_dir, signal.SIGKILL, "final", after=1, folders=folders)
    check_final_results(tmp_path / "killed-protocol", data_dir)


SEARCH = {**GRID, "name": "killed-search", "kind": "search", "losses": ["gloss"], "seeds": [0]}
SEARCH["search"] = {"trials": 3, "max_concurrent": 1}


def test_search_killed_after_its_first_trial_resumes_without_repeating_itself(tmp_path, data_dir):
    folders = {"search": 3}
    run_killed_then_resumed(SEARCH, tmp_path, data_dir, signal.SIGKILL, "search", after=1, folders=folders)
    final = final_results(load_runs(tmp_path / "killed-search"))
    assert len(final) == 3, "the search stopped at its budget"
    assert (final["outcome"] == "completed").all()
    searched = [c for c in final.columns if c.startswith("config/loss_params/") or c == "config/lr"]
    drawn = {tuple(row) for row in final[searched].astype(str).itertuples(index=False)}
    assert len(drawn) == 3, "no configuration suggested twice"


def test_an_interrupt_while_the_last_trial_trains_is_an_interrupt(tmp_path, data_dir):
    """Ctrl-C with no trial left pending: Tune stops the one still training and marks it as it
    marks finished ones. Before study/interrupts.py, `gloss run` then exited 0, the trial half
    trained; now it exits 130 and `--resume` trains it to its end."""
    epochs = 600  # seconds even on a fast machine: 60 (4 s on CI's) ended before the signal landed
    spec = {**GRID, "name": "last", "losses": ["ce"], "training": {**TRAINING, "epochs": epochs}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = [
        "run",
        str(path),
        "--storage",
        str(tmp_path),
        "--data-dir",
        str(data_dir),
        "--max-concurrent",
        "1",
    ]
    grid = tmp_path / "last" / "grid"
    driver = start_gloss([*args, "--no-report"], tmp_path / "first.log")

    def last_trial_training() -> bool:
        trials = records(grid)
        return len(finished_trials(grid)) == 1 and any(
            rows and len(rows) < epochs // 2 for rows in trials.values()
        )

    wait_for(last_trial_training, 240, "the second trial training after the first finished")
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=120) == 130, (tmp_path / "first.log").read_text()[-3000:]
    assert len(finished_trials(grid)) == 1, "the second trial was stopped, not finished"
    resumed = start_gloss([*args, "--resume", "--no-report"], tmp_path / "second.log")
    assert resumed.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert len(finished_trials(grid)) == 2
