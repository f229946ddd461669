"""`gloss run` itself, with one trial's Ray worker SIGKILLed mid-epoch (tests/faults): the study
exits 0, the trial restarts once from its checkpoint through the project's own failure and
checkpoint wiring, the summary and the report count the restart, and the terminal shows gloss's
one-line notice while Ray's traceback goes to the study's log."""

import hashlib
import os
import re

import yaml

from analysis import final_results, load_runs
from tests.conftest import REPO
from tests.processes import start_gloss

LOSSES = ["ce", "gloss"]
EPOCHS = 3
SPEC = {
    "name": "killed-worker",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": LOSSES,
    "seeds": [0],
    "max_failures": 2,
    "training": {"train_size": 96, "eval_size": 40, "max_length": 32, "batch_size": 16, "epochs": EPOCHS},
}


def digest(loss: str) -> int:
    """The hash tests/faults/sitecustomize.py gives a trial to choose whether and when it dies."""
    return int(hashlib.md5(f"r8-{loss}-s0-grid".encode()).hexdigest(), 16)


def kill_one_trial() -> tuple[str, int]:
    """A GLOSS_TEST_KILL_EVERY that kills exactly one of the two trials, and that trial's loss."""
    for every in range(2, 200):
        doomed = [loss for loss in LOSSES if digest(loss) % every == 0]
        if len(doomed) == 1:
            return doomed[0], every
    raise AssertionError("no share kills exactly one trial")


def test_gloss_run_survives_a_trial_worker_killed_mid_epoch(tmp_path, data_dir):
    doomed, every = kill_one_trial()
    spec, kills = tmp_path / "spec.yaml", tmp_path / "kills"
    spec.write_text(yaml.safe_dump(SPEC))
    kills.mkdir()
    faults = str(REPO / "tests" / "faults")
    python_path = os.pathsep.join(filter(None, [faults, os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": python_path, "GLOSS_TEST_KILL_DIR": str(kills), "GLOSS_TEST_KILL_EVERY": str(every)}
    terminal = tmp_path / "terminal.log"
    args = ["run", str(spec), "--storage", str(tmp_path), "--data-dir", str(data_dir)]
    assert start_gloss(args, terminal, env=env).wait(timeout=600) == 0, terminal.read_text()[-3000:]
    assert [marker.name for marker in kills.iterdir()] == [f"r8-{doomed}-s0-grid"], "one worker was killed"

    study = tmp_path / "killed-worker"
    output = terminal.read_text()
    notice = r"^r8-(\w+)-s0-\w+: worker lost on 127\.0\.0\.1, restarting from (.+)$"
    notices = re.findall(notice, output, re.MULTILINE)
    assert len(notices) == 1 and notices[0][0] == doomed, output
    assert re.fullmatch(r"(its epoch \d checkpoint|the start) \(1 of 2 restarts\)", notices[0][1]), notices
    assert f"gloss: Ray's messages and warnings go to {study / 'driver.log'}" in output
    for noise in ("Traceback", "ERROR", "failed", "(raylet)", "worker died"):
        assert noise not in output, output
    log = (study / "driver.log").read_text()
    assert "Trial task failed" in log and "ActorDiedError" in log, "Ray's traceback is in the study's log"
    assert "A worker died or was killed" in log, "so is the raylet's report of the death"

    assert len(list(study.rglob("result.json"))) == len(LOSSES), "one folder per trial, none rerun"
    final = final_results(load_runs(study))
    assert (final["outcome"] == "completed").all() and final["epochs_run"].eq(EPOCHS).all()
    assert dict(zip(final["loss"], final["restarts"], strict=True)) == {
        loss: int(loss == doomed) for loss in LOSSES
    }
    assert "1 trials finished after faults, restarted from their checkpoints (1 restarts in all)" in output
    report = (study / "report" / "report.html").read_text()
    assert "1 trials finished after faults" in report
