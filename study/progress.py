"""A progress line a person can follow: trials done, running and pending, the best so far,
elapsed and estimated remaining time."""

import math
import sys
import time

from ray.tune import Callback

from common.records import SEARCH_METRIC, Status, Tally
from study.notices import failure_notice, recovery_notice


def ending(trial) -> Tally:
    """How a trial Tune ended without an error counts: diverged as its last record says, else done."""
    return Tally.DIVERGED if (trial.last_result or {}).get("status") == Status.DIVERGED else Tally.DONE


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress(Callback):
    """Print one status line when a trial ends and at most every `every_s` seconds otherwise; on a
    terminal, also redraw it in place as trials report their epochs (at most once a second).

    Counts as `gloss status` does: done (completed, stopped early, stopped by the scheduler),
    failed and diverged apart. A trial that ends frees a slot that Tune fills only at a later step,
    so the line for an ending waits for the next trial to start while any is pending; printed at
    once, it would show one trial running fewer than train side by side. The estimate of what is
    left counts epochs, from the first one on: the time per epoch so far times the epochs the
    phase may still run (each unfinished trial up to its epoch bound, `epochs` for trials not
    created yet): an upper bound where trials stop early."""

    def __init__(
        self, phase: str, total: int, epochs: int = 0, every_s: float = 30.0, live: bool | None = None
    ) -> None:
        self.phase, self.total, self.epochs, self.every_s = phase, total, epochs, every_s
        self.live = sys.stderr.isatty() if live is None else live
        self.start = self.last_print = self.last_draw = time.monotonic()
        self.ended: dict[str, str] = {}
        self.due = self.drawn = False

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if time.monotonic() - self.last_print >= self.every_s:
            self.report(trials)

    def on_experiment_end(self, trials: list, **info) -> None:
        if self.due:
            self.report(trials)

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        if self.due:  # Tune marks the trial RUNNING right after this call
            self.report(trials, starting=trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        if self.live and time.monotonic() - self.last_draw >= 1.0:
            self.last_draw = time.monotonic()
            self.emit(self.line(trials), transient=True)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.ended[trial.trial_id] = ending(trial)
        self.report_or_wait(trials)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        self.emit(recovery_notice(trial))

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self.emit(failure_notice(trial))
        self.ended[trial.trial_id] = Tally.FAILED
        self.report_or_wait(trials)

    def report_or_wait(self, trials: list) -> None:
        """Report now, or at the next trial's start when one is pending to take the freed slot."""
        if any(t.status == "PENDING" for t in trials) or len(trials) < self.total:
            self.due = True
        else:
            self.report(trials)

    def report(self, trials: list, starting: str | None = None) -> None:
        self.last_print, self.due = time.monotonic(), False
        self.emit(self.line(trials, starting))

    def emit(self, text: str, transient: bool = False) -> None:
        """A line on stderr; a transient one (on a terminal) is overwritten by the next."""
        clear = "\r\x1b[K" if self.drawn else ""
        self.drawn = transient
        print(clear + text, end="" if transient else "\n", file=sys.stderr, flush=True)

    def line(self, trials: list, starting: str | None = None) -> str:
        """The status line for the current trials; `starting` is a trial Tune is starting."""
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                self.ended.setdefault(
                    trial.trial_id, Tally.FAILED if trial.status == "ERROR" else ending(trial)
                )
        counts = {
            kind: sum(k == kind for k in self.ended.values())
            for kind in (Tally.DONE, Tally.FAILED, Tally.DIVERGED)
        }
        running = [
            t
            for t in trials
            if (t.status == "RUNNING" or t.trial_id == starting) and t.trial_id not in self.ended
        ]
        elapsed = time.monotonic() - self.start
        parts = [
            f"[{self.phase} {clock(elapsed)}]",
            f"{counts['done']}/{self.total} done",
            f"{len(running)} running",
            f"{max(self.total - len(self.ended) - len(running), 0)} pending",
        ]
        parts += [f"{count} {kind}" for kind, count in counts.items() if kind != "done" and count]
        if epochs := running_epochs(running):
            parts.append(epochs)
        if best := self.best(trials):
            parts.append(best)
        if estimate := self.estimate(trials, elapsed):
            parts.append(estimate)
        return " | ".join(parts)

    def estimate(self, trials: list, elapsed: float) -> str:
        """'about H:MM:SS left (at most N epochs to go)' once an epoch has run; '' before."""
        done = sum(epoch(t) for t in trials)
        if not done:
            return ""
        left = sum(max(bound(t, self.epochs) - epoch(t), 0) for t in trials if t.trial_id not in self.ended)
        left += max(self.total - len(trials), 0) * self.epochs
        return f"about {clock(elapsed / done * left)} left (at most {left} epochs to go)"

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


def epoch(trial) -> int:
    """The last epoch the trial reported (0 before its first)."""
    return int((trial.last_result or {}).get("epoch") or 0)


def bound(trial, default: int) -> int:
    """The trial's epoch budget, from its config (`default`, the plan's, when it has none)."""
    return int((getattr(trial, "config", None) or {}).get("epochs") or default)


def running_epochs(running: list, shown: int = 3) -> str:
    """Where the running trials are: 'r8-ce-s0 3/15, r8-gloss-s0 1/15 (+2 more)'."""
    named = []
    for trial in running[:shown]:
        config = getattr(trial, "config", None) or {}
        name = trial.trial_id
        if config:
            name = f"{config.get('dataset')}-{config.get('loss')}-s{config.get('seed')}"
        named.append(f"{name} {epoch(trial)}/{bound(trial, 0) or '?'}")
    more = f" (+{len(running) - shown} more)" if len(running) > shown else ""
    return ", ".join(named) + more
