"""The live progress line of `gloss run` on fake trials: what it counts at each callback."""

from types import SimpleNamespace

from study.progress import Progress


def trial(trial_id: str, status: str, record_status: str | None = None, score: float | None = None):
    result = {"status": record_status} if record_status else {}
    if score is not None:
        result |= {"best_score": score, "monitor": "val_macro_f1", "dataset": "r8", "loss": "ce", "seed": 0}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result)


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
