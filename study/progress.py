"""A progress line a person can follow: trials done, running and pending, the best so far,
elapsed and estimated remaining time."""

import math
import sys
import time
from pathlib import Path

from ray.tune import Callback

from common.records import SEARCH_METRIC
from study.launch import trial_folder_name


def ending(trial) -> str:
    """How a trial Tune ended without an error counts: diverged as its last record says, else done."""
    return "diverged" if (trial.last_result or {}).get("status") == "diverged" else "done"


def fault(trial) -> str:
    """What ended the trial's last attempt, in a few words: 'worker lost' when its process or
    node died (Ray's actor error), else the last line of the exception Tune saved for it."""
    import cloudpickle
    from ray.exceptions import RayActorError

    if not trial.pickled_error_file or not Path(trial.pickled_error_file).is_file():
        return "failed"
    with open(trial.pickled_error_file, "rb") as handle:
        error = cloudpickle.load(handle)  # written by this driver's Tune a moment ago
    if isinstance(error, RayActorError):
        return "worker lost"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:120] if lines else type(error).__name__


def recovery_notice(trial) -> str:
    """One line for a trial Tune restarts after a fault, e.g. 'r8-ce-s0-1a2b3c4d: worker lost on
    10.0.0.7, restarting from its epoch 4 checkpoint (1 of 3 restarts)'."""
    node = (trial.last_result or {}).get("node_ip") or "its node"
    checkpoint = trial.latest_checkpoint_result
    epoch = checkpoint.metrics.get("epoch") if checkpoint else None
    start = f"restarting from its epoch {epoch} checkpoint" if epoch else "restarting from the start"
    allowed = "unlimited" if trial.max_failures < 0 else str(trial.max_failures)
    restarts = f"{trial.num_failures} of {allowed} restarts"
    return f"{trial_folder_name(trial)}: {fault(trial)} on {node}, {start} ({restarts})"


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress(Callback):
    """Print one status line when a trial ends and at most every `every_s` seconds otherwise.

    Counts as `gloss status` does: done (completed, stopped early, stopped by the scheduler),
    failed and diverged apart. A trial that ends frees a slot that Tune fills only at a later step,
    so the line for an ending waits for the next trial to start while any is pending; printed at
    once, it would show one trial running fewer than train side by side."""

    def __init__(self, phase: str, total: int, every_s: float = 30.0) -> None:
        self.phase, self.total, self.every_s = phase, total, every_s
        self.start = self.last_print = time.monotonic()
        self.ended: dict[str, str] = {}
        self.due = False

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if time.monotonic() - self.last_print >= self.every_s:
            self.report(trials)

    def on_experiment_end(self, trials: list, **info) -> None:
        if self.due:
            self.report(trials)

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        if self.due:  # Tune marks the trial RUNNING right after this call
            self.report(trials, starting=trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.ended[trial.trial_id] = ending(trial)
        self.report_or_wait(trials)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        print(recovery_notice(trial), file=sys.stderr, flush=True)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        print(f"{trial_folder_name(trial)}: failed ({fault(trial)})", file=sys.stderr, flush=True)
        self.ended[trial.trial_id] = "failed"
        self.report_or_wait(trials)

    def report_or_wait(self, trials: list) -> None:
        """Report now, or at the next trial's start when one is pending to take the freed slot."""
        if any(t.status == "PENDING" for t in trials) or len(trials) < self.total:
            self.due = True
        else:
            self.report(trials)

    def report(self, trials: list, starting: str | None = None) -> None:
        self.last_print, self.due = time.monotonic(), False
        print(self.line(trials, starting), file=sys.stderr, flush=True)

    def line(self, trials: list, starting: str | None = None) -> str:
        """The status line for the current trials; `starting` is a trial Tune is starting."""
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                self.ended.setdefault(trial.trial_id, "failed" if trial.status == "ERROR" else ending(trial))
        counts = {
            kind: sum(k == kind for k in self.ended.values()) for kind in ("done", "failed", "diverged")
        }
        running = sum(
            (t.status == "RUNNING" or t.trial_id == starting) and t.trial_id not in self.ended for t in trials
        )
        ended = len(self.ended)
        elapsed = time.monotonic() - self.start
        parts = [
            f"[{self.phase} {clock(elapsed)}]",
            f"{counts['done']}/{self.total} done",
            f"{running} running",
            f"{max(self.total - ended - running, 0)} pending",
        ]
        parts += [f"{count} {kind}" for kind, count in counts.items() if kind != "done" and count]
        if best := self.best(trials):
            parts.append(best)
        if ended:
            parts.append(f"about {clock(elapsed / ended * (self.total - ended))} left")
        return " | ".join(parts)

    @staticmethod
    def best(trials: list) -> str:
        scored = [t for t in trials if math.isfinite((t.last_result or {}).get(SEARCH_METRIC, math.nan))]
        if not scored:
            return ""
        top = max(scored, key=lambda t: t.last_result[SEARCH_METRIC])
        result = top.last_result
        return (
            f"best {result.get('monitor', SEARCH_METRIC)} {result[SEARCH_METRIC]:.4f} "
            f"({result.get('dataset')} {result.get('loss')} seed {result.get('seed')})"
        )
