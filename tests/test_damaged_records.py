"""Records read as a database reads its log: a line torn by a writer killed mid-append (a real
SIGKILL) is skipped with one warning naming the trial and the line, counted by the summary, the
report and `gloss status`; a trial whose records are unreadable as a whole is listed as such. And
`gloss analyze` / `gloss status` on what is not a study, or not finished, say so in one sentence."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis import final_results, load_runs, outcome_note
from common.records import DamagedRecordWarning
from study.cli import main
from study.lease import LEASE_FILE
from tests.processes import wait_for

FIXTURE = Path(__file__).parent / "fixtures" / "study"
REPO = Path(__file__).resolve().parents[1]
TRIAL = "grid/r8-gloss-s1-8260ac1a"

# Appends records as Ray's JsonLoggerCallback does (json text, newline, flush), but the last one
# in two writes: after the first half it says so and waits, to be killed there.
WRITER = """
import json, sys, time
records, target, halfway = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
with open(target, "w") as out:
    for record in records[:-1]:
        out.write(json.dumps(record) + "\\n")
        out.flush()
    last = json.dumps(records[-1]) + "\\n"
    out.write(last[: len(last) // 2])
    out.flush()
    open(halfway, "w").close()
    time.sleep(600)
    out.write(last[len(last) // 2 :])
"""


@pytest.fixture
def study(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "study"))


def tear_by_sigkill(result: Path, tmp_path: Path) -> int:
    """Rewrite `result` by a writer SIGKILLed halfway through its last record; returns the
    number of the torn line."""
    lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    source, halfway = tmp_path / "records.json", tmp_path / "halfway"
    source.write_text(json.dumps(lines))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(result), str(halfway)])
    try:
        wait_for(halfway.exists, 60, "the writer halfway through its last record")
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    return len(lines)


def test_a_record_torn_by_a_killed_writer_is_skipped_and_counted(study, tmp_path, capsys):
    result = study / TRIAL / "result.json"
    whole = len(result.read_text().splitlines())
    torn = tear_by_sigkill(result, tmp_path)
    # Control: the file really ends in a torn line, which a plain JSON reader refuses.
    last = result.read_text().splitlines()[-1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(last)
    with pytest.warns(DamagedRecordWarning, match=rf"r8-gloss-s1-8260ac1a: line {torn} of result\.json"):
        runs = load_runs(study)
    trial = runs[runs["trial_dir"].str.endswith("r8-gloss-s1-8260ac1a")]
    assert len(trial) == whole - 1, "every whole record of the trial is kept"
    assert len(runs["trial_dir"].unique()) == len(list(FIXTURE.rglob("result.json")))
    final = final_results(runs)
    assert final["damaged_lines"].sum() == 1
    assert "1 damaged record lines skipped (torn or not JSON) in 1 trials" in outcome_note(final)

    shutil.rmtree(study / "grid" / ".gloss-analysis", ignore_errors=True)
    shutil.rmtree(study / ".gloss-analysis", ignore_errors=True)
    assert main(["analyze", str(study), "--out", str(tmp_path / "report")]) == 0
    out, err = capsys.readouterr()
    assert f"gloss: warning: {study / TRIAL}: line {torn} of result.json" in err
    assert "1 damaged record lines skipped" in out
    assert "1 damaged record lines skipped" in (tmp_path / "report" / "report.html").read_text()
    assert main(["status", str(study)]) == 0
    assert "1 damaged record lines skipped" in capsys.readouterr().out


def test_a_trial_whose_records_are_all_unreadable_is_listed(study, capsys):
    (study / TRIAL / "result.json").write_bytes(b'{"epoch": 1, "val_macro\x00\n\xff\xfe garbage\n')
    with pytest.warns(DamagedRecordWarning):
        final = final_results(load_runs(study))
    unreadable = final[final["outcome"] == "unreadable"]
    assert [Path(p).name for p in unreadable["trial_dir"]] == ["r8-gloss-s1-8260ac1a"]
    assert "1 unreadable" in outcome_note(final) and "records unreadable:" in outcome_note(final)
    assert main(["status", str(study)]) == 0
    assert "1 unreadable" in capsys.readouterr().out


def one_line_refusal(args: list[str], capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gloss: error: "), err
    return err


def test_status_and_analyze_refuse_what_is_not_a_study(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in ("status", "analyze"):
        assert "not a gloss study" in one_line_refusal([command, str(empty)], capsys)
    # The repository holds a study deep inside (tests/fixtures/study): neither command descends.
    assert "not a gloss study" in one_line_refusal(["status", str(REPO)], capsys)
    assert "not a gloss study" in one_line_refusal(["analyze", str(REPO), "--summary"], capsys)


def test_analyze_with_nothing_finished_is_one_sentence(tmp_path, capsys):
    study = tmp_path / "fresh"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"spec": {}, "phases": [{"name": "grid", "trials": 4}]}))
    assert "no trial has finished yet" in one_line_refusal(["analyze", str(study)], capsys)
    running = study / "grid" / "r8-ce-s0-0001"
    running.mkdir(parents=True)
    (running / "result.json").write_text(json.dumps({"epoch": 1, "status": "running"}) + "\n")
    assert "no trial has finished yet" in one_line_refusal(["analyze", str(study)], capsys)


def test_analyze_of_a_running_study_says_so(study, tmp_path, capsys):
    done = len(list((FIXTURE / "grid").glob("*/result.json")))
    planned = [{"name": "grid", "trials": done + 3}]
    (study / "study.json").write_text(json.dumps({"spec": {}, "phases": planned}))
    now = time.time()
    host, pid = socket.gethostname(), os.getpid()
    lease = {"holder": "x", "host": host, "pid": pid, "started": now, "heartbeat": now}
    (study / LEASE_FILE).write_text(json.dumps(lease))
    assert main(["analyze", str(study), "--summary"]) == 0
    out = capsys.readouterr().out
    assert f"study running (pid {os.getpid()}" in out and "3 trials left" in out


def test_an_epoch_trained_again_after_a_resume_is_read_once_the_later_record_winning(study, capsys):
    """Tune logs an epoch's record before it registers the epoch's checkpoint: a driver stopped
    between the two resumes the trial from the checkpoint before, which trains and logs that epoch
    again. The later record supersedes the earlier, in its place, and the note counts it."""
    result = study / TRIAL / "result.json"
    lines = result.read_text().splitlines()
    again = json.loads(lines[1]) | {"selected_test_macro_f1": 0.123456}
    result.write_text("\n".join([*lines[:2], json.dumps(again), *lines[2:]]) + "\n")
    runs = load_runs(study)
    trial = runs[runs["trial_dir"].str.endswith("r8-gloss-s1-8260ac1a")]
    assert trial["epoch"].tolist() == sorted(set(trial["epoch"])) and len(trial) == len(lines)
    epoch = json.loads(lines[1])["epoch"]
    assert trial.loc[trial["epoch"] == epoch, "selected_test_macro_f1"].item() == 0.123456
    final = final_results(runs)
    assert final["replayed_epochs"].sum() == 1
    assert "1 epochs trained again in 1 trials after a resume" in outcome_note(final)
