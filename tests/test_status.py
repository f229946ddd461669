"""`gloss status` against a study's storage: while `gloss run` trains, after its driver is
SIGKILLed, after `--resume` finished it, and for a protocol's phases not started yet."""

import json
import re
import shutil
import signal
from pathlib import Path

import pytest
import yaml

from common.storage import upload_folder
from study.cli import main
from tests.processes import finished_trials, records, start_gloss, wait_for
from tests.s3_server import s3_server

TRAINING = {"train_size": 120, "eval_size": 60, "max_length": 32, "epochs": 6, "patience": None}
GRID = {
    "name": "watched",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    "checkpoint": {"every_epochs": 1},  # states to resume from when the driver is killed
    "training": TRAINING,
}
COUNTS = re.compile(
    r"^grid: (?P<done>\d+)/(?P<total>\d+) done, (?P<running>\d+) running, "
    r"(?:(?P<interrupted>\d+) interrupted, )?(?P<pending>\d+) pending, (?P<failed>\d+) failed, "
    r"(?P<diverged>\d+) diverged",
    re.MULTILINE,
)


def status(study: Path | str, capsys) -> tuple[str, dict[str, int]]:
    """`gloss status` of the study: its text and the grid's counts."""
    assert main(["status", str(study)]) == 0
    out = capsys.readouterr().out
    found = COUNTS.search(out)
    assert found, out
    return out, {key: int(value or 0) for key, value in found.groupdict().items()}


def best_by_loss(study: Path) -> dict[str, float]:
    """The best validation score per loss, straight from the result.json records."""
    best: dict[str, float] = {}
    for rows in records(study).values():
        for row in rows:
            if row.get("best_score") is not None:
                loss = row["config"]["loss"]
                best[loss] = max(best.get(loss, -1.0), row["best_score"])
    return best


def test_status_while_running_after_a_kill_and_when_finished(tmp_path, data_dir, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(GRID))
    args = [
        "run",
        str(spec),
        "--storage",
        str(tmp_path),
        "--data-dir",
        str(data_dir),
        "--max-concurrent",
        "2",
    ]
    study = tmp_path / "watched"
    driver = start_gloss([*args, "--no-report"], tmp_path / "first.log")
    try:
        wait_for(lambda: any(records(study / "grid").values()), 240, "a first epoch record")
        out, counts = status(study, capsys)
        assert driver.poll() is None, "the study was still running when status read it"
        assert "driver: running (pid" in out
        assert counts["total"] == 4 and counts["interrupted"] == 0
        parts = ("done", "running", "pending", "failed", "diverged")
        assert sum(counts[k] for k in parts) == 4, out
        assert counts["running"] > 0 or counts["done"] < 4, out
        assert "refused while it runs" in out
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)

    out, counts = status(study, capsys)
    finished = len(finished_trials(study / "grid"))
    assert "driver: none" in out and counts["running"] == 0
    assert counts["done"] == finished
    assert counts["interrupted"] + counts["pending"] == 4 - finished > 0, out
    rerun = out.split("--resume would rerun: ", 1)[1]
    if counts["interrupted"]:
        assert f"{counts['interrupted']} interrupted trials from their last checkpoint" in rerun
    if counts["pending"]:
        assert f"{counts['pending']} trials not yet started" in rerun

    resumed = start_gloss([*args, "--resume", "--no-report"], tmp_path / "second.log")
    assert resumed.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-3000:]
    out, counts = status(study, capsys)
    assert counts == {**counts, "done": 4, "total": 4, "running": 0, "interrupted": 0, "pending": 0}
    assert "--resume would rerun nothing" in out and "nothing left to run" in out
    for loss, score in best_by_loss(study).items():
        assert re.search(rf"^  r8\s+{loss}\s+{score:.4f} ", out, re.MULTILINE), (loss, out)

    with s3_server(tmp_path / "moto.log") as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        upload_folder(study, server.uri("copy", "watched"))
        from_bucket, _ = status(server.uri("copy", "watched"), capsys)
    assert from_bucket.splitlines()[1:] == out.splitlines()[1:], "the bucket's copy reads the same"

    provenance = json.loads((study / "study.json").read_text())
    assert provenance["spec"]["name"] == "watched" and provenance["phases"] == [{"name": "grid", "trials": 4}]
    assert provenance["command"][:3] == ["gloss", "run", str(spec)] and "--resume" in provenance["command"]
    assert provenance["versions"]["ray"] and provenance["versions"]["torch"]
    assert provenance["git_commit"] and provenance["machine"]["cores"] >= 1
    assert main(["analyze", str(study / "grid"), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Provenance</h2>" in report and provenance["git_commit"] in report


def test_a_protocol_before_its_first_trial(tmp_path, capsys):
    study = tmp_path / "early"
    study.mkdir()
    phases = [{"name": "search", "trials": 8}, {"name": "final", "trials": 18}]
    (study / "study.json").write_text(json.dumps({"spec": {"name": "early"}, "phases": phases}))
    assert main(["status", str(study)]) == 0
    out = capsys.readouterr().out
    assert "search: not started (8 trials planned)" in out
    assert "final: not started (18 trials planned)" in out
    assert "search: all 8 trials (not started); final: all 18 trials (not started)" in out


def test_a_missing_study_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["status", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such study folder" in err


def test_status_json_is_versioned_and_says_what_the_text_says(tmp_path, capsys):
    study = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "study", tmp_path / "study"))
    assert main(["status", str(study)]) == 0
    text = capsys.readouterr().out
    assert main(["status", str(study), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1 and shown["study"] == str(study) and shown["driver"] is None
    for phase in shown["phases"]:
        line = next(line for line in text.splitlines() if line.startswith(f"{phase['name']}: "))
        assert line.startswith(f"{phase['name']}: {phase['done']}/{phase['done'] + phase['diverged']} done")
        assert f"{phase['diverged']} diverged" in line and f"{phase['pending']} pending" in line
    best = {(row["dataset"], row["loss"]): row["best_score"] for row in shown["best"]}
    for (dataset, loss), score in best.items():
        assert re.search(rf"^  {dataset}\s+{re.escape(loss)}\s+{score:.4f} ", text, re.MULTILINE)
    assert f"--resume would rerun: {'; '.join(shown['resume'])}" in text
