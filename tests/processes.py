"""Helpers for tests that run `gloss` as a separate process and interrupt it."""

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
