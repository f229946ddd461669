"""Helpers for tests that interrupt training: `gloss` in a separate process, and the uninterrupted
reference run their results must equal."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO


def start_gloss(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """`gloss ARGS` in a child process (its own local Ray unless --address is given)."""
    handle = open(log, "w")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(
        [sys.executable, "-m", "study.cli", *args],
        cwd=REPO,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def records(folder: Path) -> dict[Path, list[dict]]:
    """Each trial folder's records under `folder`."""
    found = {}
    for path in folder.rglob("result.json"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        found[path.parent] = [json.loads(line) for line in lines if line.endswith("}")]
    return found


def finished_trials(folder: Path) -> dict[Path, str]:
    """Trials whose last record says they finished, with their result.json text."""
    done = {}
    for trial, rows in records(folder).items():
        if rows and rows[-1].get("status") in ("completed", "early_stopped"):
            done[trial] = (trial / "result.json").read_text()
    return done


def uninterrupted_run(config: dict, data_dir: Path) -> dict:
    """The last record of one trial config trained without interruption, in this process on one
    thread, as a Ray trial with one CPU trains it."""
    import torch

    from trainables.config import TrialConfig
    from trainables.training.trainer import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return list(Trainer(TrialConfig.from_dict({**config, "data_dir": str(data_dir)})).run())[-1]
    finally:
        torch.set_num_threads(threads)
