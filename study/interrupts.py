"""Whether Ray Tune's fit ended because it was told to stop (Ctrl-C's SIGINT, or the SIGUSR1 that
SLURM sends before a job's time limit), not because its trials ended.

Tune then stops the trials still running and marks them TERMINATED, as it marks finished ones, so
its results alone cannot tell a stopped phase from a finished one when no trial was left pending
(tests/test_driver_loss.py, the last trial interrupted: `gloss run` exited 0 with a trial half
trained). Tune's handler, on either signal, puts back the SIGINT handler it found: here a marker,
so finding the marker again after the fit means a signal came."""

import os
import signal
import threading
from collections.abc import Callable
from typing import Any


def fit_watched(fit: Callable[[], Any]) -> tuple[Any, bool]:
    """`fit()`'s result, and whether Tune was stopped by a signal while it ran."""
    if threading.current_thread() is not threading.main_thread():
        return fit(), False  # Tune installs no handler off the main thread, nor may we
    if os.getenv("TUNE_DISABLE_SIGINT_HANDLER", "0") != "0":
        return fit(), False  # Ctrl-C then raises KeyboardInterrupt out of the fit
    previous = signal.getsignal(signal.SIGINT)

    def marker(signum: int, frame) -> None:
        raise KeyboardInterrupt  # a second Ctrl-C, after Tune's handler put this one back

    signal.signal(signal.SIGINT, marker)
    try:
        result = fit()
        return result, signal.getsignal(signal.SIGINT) is marker
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
