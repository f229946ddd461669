"""The columnar cache of a study's records: a table (runs.parquet) beside a manifest of the record
files it was built from, so a later load re-reads only the trials whose files changed.

A local study keeps its cache in its own folder (.gloss-analysis); a study in object storage
keeps it on this machine, under the gloss cache ($GLOSS_CACHE_DIR, else $XDG_CACHE_HOME/gloss,
else ~/.cache/gloss) in analysis/<hash of the URI and the S3 endpoint>."""

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from common.atomic import atomic_path, write_text
from common.storage import is_uri

CACHE_DIR = ".gloss-analysis"
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


def cache_root() -> Path:
    """The root of gloss caches (the same rule as common.paths, which analysis does not import)."""
    if explicit := os.environ.get("GLOSS_CACHE_DIR"):
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "gloss"


def cache_folder(location: str) -> Path:
    """Where the cache of the study at `location` (a folder or a URI) lives. The endpoint is part
    of a URI's key: the same bucket name on two stores is two studies."""
    if not is_uri(location):
        return Path(location) / CACHE_DIR
    endpoint = next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), "")
    key = hashlib.sha256(f"{endpoint}\n{location.rstrip('/')}".encode()).hexdigest()[:24]
    return cache_root() / "analysis" / key


def read_cache(folder: Path) -> tuple[pd.DataFrame | None, dict]:
    """The cached table and its manifest; (None, {}) when either is missing or unreadable."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return pd.read_parquet(folder / "runs.parquet"), manifest
    except (OSError, ValueError):
        return None, {}


def write_cache(folder: Path, frame: pd.DataFrame, manifest: dict) -> None:
    """Write table then manifest, each atomically: a manifest never describes a missing table."""
    try:
        with atomic_path(folder / "runs.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        write_text(folder / "manifest.json", json.dumps(manifest))
    except OSError:
        return  # a read-only study folder is analysed without a cache
