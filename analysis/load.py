"""Load study folders (Ray Tune experiments) into one tidy DataFrame, without starting Ray:
one row per trial x epoch, a column for every metric and (as config/...) every config field."""

import json
from pathlib import Path

import pandas as pd

RESULT_FILE, ERROR_FILE = "result.json", "error.txt"


def trial_folders(path: Path) -> list[Path]:
    """Every trial folder under `path` (a study, a phase or a single trial folder)."""
    return sorted(p.parent for p in Path(path).expanduser().rglob(RESULT_FILE))


def flatten(mapping: dict, prefix: str) -> dict:
    """{'a': {'b': 1}} -> {'prefix/a/b': 1}."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def read_trial(folder: Path) -> list[dict]:
    """The trial's records, each with its config flattened; a trial that failed before its first
    report still gives one row, marked failed."""
    rows = []
    text = (folder / RESULT_FILE).read_text()
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            config = record.pop("config", {}) or {}
            rows.append({**record, **flatten(config, "config")})
    error_file = folder / ERROR_FILE
    error = error_file.read_text().strip().splitlines()[-1] if error_file.exists() else ""
    if not rows:
        rows.append({"status": "failed"})
    for row in rows:
        row.update(trial_dir=str(folder), experiment=folder.parent.name, error=error)
    return rows


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """A tidy frame of every trial x epoch under `paths`."""
    rows = [row for path in paths for folder in trial_folders(Path(path)) for row in read_trial(folder)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise FileNotFoundError(f"no trial records (result.json) under {', '.join(map(str, paths))}")
    return frame
