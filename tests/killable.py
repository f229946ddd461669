"""Writers SIGKILLed in the middle of a real write, at a moment the test knows.

The child runs the real write with its file object wrapped in `Stalled`: once the first bytes are
on disk, the wrapper tells the parent (a marker file holding the child's pid and the path being
written) and blocks; the parent then sends SIGKILL, so no `finally` or `except` of the writer runs.
Children come from a forkserver whose server imported the heavy libraries once: each starts in
milliseconds and inherits none of the test process's threads (Ray's, torch's)."""

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

PRELOAD = ["torch", "transformers", "datasets", "analysis.report", "trainables.model.embedding_cache"]


def context(module: str) -> multiprocessing.context.BaseContext:
    """The multiprocessing context of killable children (and concurrent builders) whose targets live
    in `module`; the server imports it with the heavy libraries when it starts. Import Ray lazily
    there: the server must not start threads before it forks."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload([*PRELOAD, module])
    return forkserver


def tell_parent(marker: Path, writing: str) -> None:
    """Create `marker` atomically with this pid and the path being written."""
    partial = marker.with_name(marker.name + ".partial")
    with open(partial, "w") as handle:  # not Path.write_text, which a child may have replaced
        handle.write(f"{os.getpid()}\n{writing}\n")
    os.replace(partial, marker)


def block_until_killed() -> None:
    while True:
        time.sleep(3600)


class Stalled:
    """A writable file that passes its first `after` bytes (or characters) through to `handle`,
    puts them on disk, tells the parent through `marker` and blocks until killed."""

    def __init__(self, handle, marker: Path, after: int):
        self.handle, self.marker, self.after, self.written = handle, marker, after, 0

    def write(self, data):
        room = self.after - self.written
        if len(data) < room:
            self.written += len(data)
            return self.handle.write(data)
        self.handle.write(data[:room])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        tell_parent(self.marker, self.handle.name)
        block_until_killed()

    def __getattr__(self, name):
        if name == "fileno":  # writers that find a descriptor write past `write` (PIL, numpy)
            raise AttributeError(name)
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def stalled_open(marker: Path, after: int) -> Callable:
    """An `open` whose files stall after `after` bytes (to shadow a module's built-in `open`)."""

    def opener(file, mode="r", *args, **kwargs):
        return Stalled(open(file, mode, *args, **kwargs), marker, after)

    return opener


def kill_mid_write(target: Callable, *args, marker: Path, timeout_s: float = 180) -> tuple[int, Path]:
    """Run `target(*args)` in a child, SIGKILL it once it signals through `marker` that it is in the
    middle of a write; return its pid and the path it was writing."""
    child = context(target.__module__).Process(target=target, args=args)
    child.start()
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if not child.is_alive():
            raise AssertionError(f"the writer ended (exit {child.exitcode}) before it stalled mid-write")
        if time.monotonic() > deadline:
            child.kill()
            child.join()
            raise AssertionError(f"the writer did not reach the middle of its write in {timeout_s} s")
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    pid, writing = marker.read_text().splitlines()
    assert int(pid) == child.pid
    return child.pid, Path(writing)
