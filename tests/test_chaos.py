"""Chaos at scale: a 200-trial study in which one trial in ten SIGKILLs its own worker at a seeded
step of its first attempt (tests/faults/sitecustomize.py), and whose driver is SIGKILLed once and
resumed, ends with every trial's result exactly once: none lost, none duplicated, the recovered
ones counted as finished with their restarts."""

import os
import signal
from pathlib import Path

import pytest
import yaml

from analysis import final_results, load_runs
from tests.conftest import REPO
from tests.processes import finished_trials, start_gloss, wait_for

pytestmark = pytest.mark.chaos

SEEDS = 100
SPEC = {
    "name": "chaos",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": list(range(SEEDS)),
    "max_failures": 3,
    "training": {
        "train_size": 48,
        "eval_size": 32,
        "max_length": 16,
        "batch_size": 16,
        "epochs": 3,
        "patience": None,
    },
}


def test_two_hundred_trials_under_kills_end_exactly_once(tmp_path, data_dir):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    kills = tmp_path / "kills"
    kills.mkdir()
    python_path = os.pathsep.join(
        filter(None, [str(REPO / "tests" / "faults"), os.environ.get("PYTHONPATH")])
    )
    env = {"PYTHONPATH": python_path, "GLOSS_TEST_KILL_DIR": str(kills)}
    args = ["run", str(spec), "--storage", str(tmp_path), "--data-dir", str(data_dir), "--no-report"]
    study = tmp_path / "chaos"

    driver = start_gloss(args, tmp_path / "first.log", env=env)
    wait_for(lambda: len(finished_trials(study)) >= 60 or driver.poll() is not None, 900, "60 trials")
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    resumed = start_gloss([*args, "--resume"], tmp_path / "second.log", env=env)
    assert resumed.wait(timeout=1500) == 0, (tmp_path / "second.log").read_text()[-3000:]

    killed = {marker.name for marker in kills.iterdir()}
    assert 10 <= len(killed) <= 35, f"about one trial in ten was killed: {len(killed)}"
    folders = list(Path(study).rglob("result.json"))
    assert len(folders) == 2 * SEEDS, "one folder per trial: none lost, none duplicated"
    final = final_results(load_runs(study))
    identities = set(zip(final["loss"], final["seed"], strict=True))
    assert len(final) == len(identities) == 2 * SEEDS
    assert (final["outcome"] == "completed").all(), final["outcome"].value_counts().to_dict()
    names = final["dataset"] + "-" + final["loss"] + "-s" + final["seed"].astype(str) + "-grid"
    restarted = final[names.isin(killed)]
    assert len(restarted) == len(killed) and (restarted["restarts"] >= 1).all()
    assert (final.loc[~names.isin(killed), "restarts"] == 0).all()
    log = (tmp_path / "second.log").read_text()  # Ray's own logs of the kills are in it too
    assert "trials not finished normally" not in log
    assert "finished after faults, restarted from their checkpoints" in log
