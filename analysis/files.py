"""Atomic output files: written beside their target and renamed into place, so a killed run never
leaves a half-written table, figure or cache that a later run trusts. (`analysis` reads records
only and depends on neither sibling package, hence its own small helper.)

Temporary files are named `.<name>.<host>.<pid>.<random>.tmp`: readers open targets by name and
never see them, and a SIGKILLed writer's leftover, which no `finally` removed, is deleted by the
next write of the same target once its writer no longer runs."""

import contextlib
import glob
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` that replaces it when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    prefix = f"{host_prefix(target)}{os.getpid()}."
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    """Replace `target` with `text` atomically."""
    with replaced(target) as tmp:
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
