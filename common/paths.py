"""Where data and caches live: flags first, then environment variables, then the user's cache."""

import os
from pathlib import Path

from common.errors import DataError


def cache_root() -> Path:
    """The root of gloss caches: $GLOSS_CACHE_DIR, else $XDG_CACHE_HOME/gloss, else ~/.cache/gloss."""
    if explicit := os.environ.get("GLOSS_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gloss"


def default_data_dir() -> Path:
    """The data directory when no flag is given: $GLOSS_DATA_DIR, else <cache root>/data."""
    if explicit := os.environ.get("GLOSS_DATA_DIR"):
        return Path(explicit).expanduser()
    return cache_root() / "data"


def resolve_data_dir(flag: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """The data directory from a flag or the defaults, checked to exist when asked."""
    path = Path(flag).expanduser() if flag else default_data_dir()
    if must_exist and not path.is_dir():
        raise DataError(
            f"data directory {path} does not exist; run `gloss data download` or point "
            "--data-dir / GLOSS_DATA_DIR at a folder holding <name>/train.jsonl.gz files."
        )
    return path.resolve()


def cache_dir(kind: str) -> Path:
    """A named cache folder (tokens, embeddings, ...), created on demand."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
