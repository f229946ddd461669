"""The live progress line of `gloss run` on fake trials: what it counts at each callback."""

from types import SimpleNamespace

from study.naming import trial_folder_name
from study.progress import Progress


def trial(
    trial_id: str,
    status: str,
    record_status: str | None = None,
    score: float | None = None,
    epoch: int | None = None,
    config: dict | None = None,
):
    result = {"status": record_status} if record_status else {}
    if score is not None:
        result |= {"best_score": score, "monitor": "val_macro_f1", "dataset": "r8", "loss": "ce", "seed": 0}
    if epoch is not None:
        result["epoch"] = epoch
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result, config=config or {})


def fields(line: str) -> list[str]:
    return line.split(" | ")[1:]


def test_two_trials_side_by_side_are_two_running():
    progress = Progress("grid", 4)
    trials = [trial("a", "RUNNING"), trial("b", "RUNNING"), trial("c", "PENDING"), trial("d", "PENDING")]
    assert fields(progress.line(trials))[:3] == ["0/4 done", "2 running", "2 pending"]


def test_an_ending_is_reported_once_the_next_trial_takes_its_slot(capsys):
    progress = Progress("grid", 3)
    a, b, c = trial("a", "RUNNING", "completed", 0.5), trial("b", "RUNNING"), trial("c", "PENDING")
    progress.on_trial_complete(0, [a, b, c], a)  # Tune calls it while `a` still shows RUNNING
    assert capsys.readouterr().err == "", "c is pending: the line waits for it to start"
    a.status = "TERMINATED"
    progress.on_trial_start(1, [a, b, c], c)  # Tune marks `c` RUNNING right after this call
    line = capsys.readouterr().err.strip()
    assert fields(line)[:3] == ["1/3 done", "2 running", "0 pending"], line
    assert "best val_macro_f1 0.5000" in line


def test_the_last_ending_is_reported_at_once(capsys):
    progress = Progress("grid", 2)
    a, b = trial("a", "TERMINATED", "completed"), trial("b", "RUNNING", "completed")
    progress.on_trial_complete(0, [a, b], b)
    assert fields(capsys.readouterr().err.strip())[:3] == ["2/2 done", "0 running", "0 pending"]


def test_failed_and_diverged_are_counted_apart_from_done():
    progress = Progress("grid", 5)
    trials = [
        trial("a", "TERMINATED", "completed"),
        trial("b", "TERMINATED", "diverged"),
        trial("c", "ERROR", "epoch"),
        trial("d", "RUNNING", "epoch"),
        trial("e", "PENDING"),
    ]
    parts = fields(progress.line(trials))
    assert parts[:5] == ["1/5 done", "1 running", "1 pending", "1 failed", "1 diverged"], parts


def test_a_trial_stopped_by_the_scheduler_is_done_and_not_running():
    progress = Progress("search", 2)
    stopped, other = trial("a", "RUNNING", "epoch"), trial("b", "RUNNING", "epoch")
    progress.on_trial_complete(0, [stopped, other], stopped)  # ASHA stops it: no pending trial
    assert fields(progress.line([stopped, other]))[:3] == ["1/2 done", "1 running", "0 pending"]


def test_the_estimate_counts_epochs_from_the_first_one(monkeypatch):
    """Before any trial ends: seconds per epoch so far x epochs the phase may still run (each
    unfinished trial up to its bound, the plan's bound for trials not created yet)."""
    now = [100.0]
    monkeypatch.setattr("study.progress.time.monotonic", lambda: now[0])
    progress = Progress("grid", 3, epochs=10)
    config = {"dataset": "r8", "loss": "ce", "seed": 0, "epochs": 10}
    a = trial("a", "RUNNING", "running", epoch=2, config=config)
    b = trial("b", "RUNNING", "running", epoch=3, config={**config, "loss": "gloss", "epochs": 6})
    assert progress.estimate([trial("a", "RUNNING")], 0.0) == ""
    now[0] += 50.0  # 5 epochs in 50 s: 10 s an epoch; left (10-2) + (6-3) + 10 not created = 21
    line = progress.line([a, b])
    assert "about 0:03:30 left (at most 21 epochs to go)" in line, line
    assert "r8-ce-s0 2/10, r8-gloss-s0 3/6" in line, line


def test_a_terminal_gets_a_live_line_that_later_lines_overwrite(capsys):
    progress = Progress("grid", 2, epochs=4, live=True)
    progress.last_draw = 0.0
    config = {"dataset": "r8", "loss": "ce", "seed": 0, "epochs": 4}
    a = trial("a", "RUNNING", "running", epoch=1, config=config)
    progress.on_trial_result(0, [a], a, a.last_result)
    drawn = capsys.readouterr().err
    assert not drawn.endswith("\n") and "r8-ce-s0 1/4" in drawn
    progress.report([a])
    assert capsys.readouterr().err.startswith("\r\x1b[K"), "the next line clears the live one"


def test_no_live_line_when_not_a_terminal(capsys):
    progress = Progress("grid", 2, epochs=4, live=False)
    progress.last_draw = 0.0
    a = trial("a", "RUNNING", "running", epoch=1)
    progress.on_trial_result(0, [a], a, a.last_result)
    assert capsys.readouterr().err == "", "one line per update, at endings and every 30 s"


def test_a_trial_folder_is_named_after_its_row_as_its_records_are():
    """`loss` means the study's row wherever a person reads it: in records and in folder names."""
    row = SimpleNamespace(
        config={"dataset": "r8", "loss": "gloss", "method": "gloss_o+ce", "seed": 2}, trial_id="ab12"
    )
    plain = SimpleNamespace(config={"dataset": "mr", "loss": "ce", "seed": 0}, trial_id="cd34")
    assert (trial_folder_name(row), trial_folder_name(plain)) == ("r8-gloss_o+ce-s2-ab12", "mr-ce-s0-cd34")
