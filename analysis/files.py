"""Atomic output files: written beside their target and renamed into place, so a killed run never
leaves a half-written table, figure or cache that a later run trusts. (`analysis` reads records
only and depends on neither sibling package, hence its own small helper.)"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` that replaces it when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
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
