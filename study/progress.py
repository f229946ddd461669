"""A progress line a person can follow: trials done, running and pending, the best so far,
elapsed and estimated remaining time."""

import math
import sys
import time

from ray.tune import Callback

from study.searchers import METRIC


def clock(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress(Callback):
    """Print one status line when a trial ends and at most every `every_s` seconds otherwise."""

    def __init__(self, phase: str, total: int, every_s: float = 30.0) -> None:
        self.phase, self.total, self.every_s = phase, total, every_s
        self.start = self.last_print = time.monotonic()
        self.ended: dict[str, bool] = {}

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if time.monotonic() - self.last_print >= self.every_s:
            self.report(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.ended[trial.trial_id] = False
        self.report(trials)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self.ended[trial.trial_id] = True
        self.report(trials)

    def report(self, trials: list) -> None:
        self.last_print = time.monotonic()
        print(self.line(trials), file=sys.stderr, flush=True)

    def line(self, trials: list) -> str:
        """The status line for the current trials."""
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR"):
                self.ended.setdefault(trial.trial_id, trial.status == "ERROR")
        done, failed = len(self.ended), sum(self.ended.values())
        running = sum(t.status == "RUNNING" and t.trial_id not in self.ended for t in trials)
        elapsed = time.monotonic() - self.start
        parts = [
            f"[{self.phase} {clock(elapsed)}]",
            f"{done}/{self.total} done",
            f"{running} running",
            f"{max(self.total - done - running, 0)} pending",
        ]
        if failed:
            parts.append(f"{failed} failed")
        if best := self.best(trials):
            parts.append(best)
        if done:
            parts.append(f"about {clock(elapsed / done * (self.total - done))} left")
        return " | ".join(parts)

    @staticmethod
    def best(trials: list) -> str:
        scored = [t for t in trials if math.isfinite((t.last_result or {}).get(METRIC, math.nan))]
        if not scored:
            return ""
        top = max(scored, key=lambda t: t.last_result[METRIC])
        result = top.last_result
        return (
            f"best {result.get('monitor', METRIC)} {result[METRIC]:.4f} "
            f"({result.get('dataset')} {result.get('loss')} seed {result.get('seed')})"
        )
