"""Atomic file writes and a cross-process lock, so a killed or concurrent writer never leaves a
file that a later run trusts.

A write goes to `.<name>.<host>.<pid>.<random>.tmp` beside its target and is renamed over it when
complete. Readers open targets by name only, so a temporary file is never read. A SIGKILLed writer
runs no cleanup; its temporary file names the process that wrote it, so the next write of the same
target deletes the leftovers of writers on this host that no longer run."""

import contextlib
import fcntl
import glob
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    prefix = f"{host_prefix(target)}{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Replace `target` with `text` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def host_prefix(target: Path) -> str:
    """How the names of `target`'s temporary files written on this host start (the pid follows)."""
    return f".{target.name}.{socket.gethostname()}."


def remove_leftovers(target: Path) -> None:
    """Delete `target`'s temporary files whose writer, a process on this host, no longer runs."""
    prefix = host_prefix(target)
    for path in target.parent.glob(glob.escape(prefix) + "*.tmp"):
        pid = path.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not running(int(pid)):
            path.unlink(missing_ok=True)


def running(pid: int) -> bool:
    """Whether process `pid` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@contextlib.contextmanager
def file_lock(target: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `<target>.lock` so only one process builds `target` at a time."""
    lock_path = Path(f"{target}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
