"""Load study folders (Ray Tune experiments) into one tidy DataFrame without starting Ray: one row
per trial x epoch, a column for every metric and (as config/...) every config field.

Each study folder keeps a columnar cache (.gloss-analysis/runs.parquet) beside a manifest of the
record files it was built from; a later load re-reads only trials whose files changed."""

import concurrent.futures
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.files import replaced, write_text

RESULT_FILE, ERROR_FILE, PARAMS_FILE = "result.json", "error.txt", "params.json"
IDENTITY = ("dataset", "loss", "loss_function", "seed", "model", "fidelity", "study", "phase")
# Where a trial's config holds each identity field: `loss` is the study's row (config `method`;
# records older than rows name the registry loss), `loss_function` the registry loss.
CONFIG_KEYS = {"loss": ("method", "loss"), "loss_function": ("loss",)}
CACHE_DIR = ".gloss-analysis"


def trial_folders(path: Path) -> list[Path]:
    """Every trial folder under `path` (a study, a phase, or a single trial folder)."""
    return sorted(p.parent for p in Path(path).rglob(RESULT_FILE) if CACHE_DIR not in p.parts)


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


def read_trial(folder: Path) -> tuple[list[dict], dict]:
    """The trial's records (their config removed) and one row of facts about the trial: its
    flattened config, folder and last error line. A trial that failed before its first report
    still gives one record, marked failed."""
    with open(folder / RESULT_FILE) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    config = records[-1].get("config") if records else None
    if config is None and (folder / PARAMS_FILE).exists():
        config = json.loads((folder / PARAMS_FILE).read_text())
    for record in records:
        record.pop("config", None)
    error_file = folder / ERROR_FILE
    error = error_file.read_text().strip().splitlines()[-1:] if error_file.exists() else []
    facts = {
        **flatten(config or {}, "config"),
        "trial_dir": str(folder),
        "experiment": folder.parent.name,
        "error": error[0] if error else "",
    }
    return records or [{"status": "failed"}], facts


def read_trials(folders: list[Path]) -> pd.DataFrame:
    """Records of many trials, each joined with its trial's facts (built once per trial)."""
    records, owner, facts = [], [], []
    for index, folder in enumerate(folders):
        trial_records, trial_facts = read_trial(folder)
        records += trial_records
        owner += [index] * len(trial_records)
        facts.append(trial_facts)
    if not records:
        return pd.DataFrame()
    frame = pd.concat([pd.DataFrame(records), pd.DataFrame(facts).iloc[owner].reset_index(drop=True)], axis=1)
    for key in IDENTITY:
        for source in (f"config/{name}" for name in CONFIG_KEYS.get(key, (key,))):
            if source in frame:
                frame[key] = frame[key].fillna(frame[source]) if key in frame else frame[source]
    return frame


def read_in_parallel(folders: list[Path], per_process: int = 1000) -> pd.DataFrame:
    """read_trials, split across processes when there are many trials (a first load)."""
    workers = min(os.cpu_count() or 1, len(folders) // per_process)
    if workers < 2:
        return read_trials(folders)
    chunks = [folders[i::workers] for i in range(workers)]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        return pd.concat(list(pool.map(read_trials, chunks)), ignore_index=True)


def signature(folder: Path) -> list[int]:
    """What changes when a trial's records change: sizes and modification times of its files."""
    paths = [folder / RESULT_FILE, folder / ERROR_FILE]
    stats = [os.stat(path) if path.exists() else None for path in paths]
    return [value for s in stats for value in ((s.st_size, s.st_mtime_ns) if s else (-1, -1))]


def tidy_types(frame: pd.DataFrame) -> pd.DataFrame:
    """One type per column, so the frame is the same whether read from records or the cache:
    numbers where every value is a number, text where a column mixes numbers and text."""
    for column in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype)]:
        values = frame[column].dropna()
        kinds = {type(v) for v in values}
        if kinds and kinds <= {int, float}:
            frame[column] = pd.to_numeric(frame[column])
        elif len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: v if v is None else str(v))
    return frame


def load_study(path: Path) -> pd.DataFrame:
    """One study folder's records, through its cache."""
    folders = trial_folders(path)
    manifest = {str(folder): signature(folder) for folder in folders}
    cache, cached_manifest = _read_cache(path)
    stale = [f for f in folders if cached_manifest.get(str(f)) != manifest[str(f)]]
    if cache is not None and not stale and len(cached_manifest) == len(manifest):
        return cache
    kept = None
    if cache is not None:
        current = cache["trial_dir"].isin(set(manifest))
        kept = cache[current & ~cache["trial_dir"].isin({str(f) for f in stale})]
    fresh = read_in_parallel(stale)
    frame = tidy_types(pd.concat([f for f in (kept, fresh) if f is not None and len(f)], ignore_index=True))
    _write_cache(path, frame, manifest)
    return frame


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """A tidy frame of every trial x epoch under `paths` (study folders written by gloss)."""
    frames = [load_study(Path(p).expanduser()) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise FileNotFoundError(f"no trial records (result.json) under {', '.join(map(str, paths))}")
    return tidy_types(pd.concat(frames, ignore_index=True)) if len(frames) > 1 else frames[0]


def _read_cache(path: Path) -> tuple[pd.DataFrame | None, dict]:
    folder = path / CACHE_DIR
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return pd.read_parquet(folder / "runs.parquet"), manifest
    except (OSError, ValueError):
        return None, {}


def _write_cache(path: Path, frame: pd.DataFrame, manifest: dict) -> None:
    """Write table then manifest, each atomically: a manifest never describes a missing table."""
    folder = path / CACHE_DIR
    try:
        with replaced(folder / "runs.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        write_text(folder / "manifest.json", json.dumps(manifest))
    except OSError:
        return  # a read-only study folder is analysed without a cache


def saved_test_embeddings(final: pd.DataFrame) -> dict[str, tuple]:
    """Per loss, the saved test embeddings (and labels) of one trial, when trials saved them
    (`save_embeddings: true`): the first dataset and seed with a file."""
    found = {}
    for row in final.sort_values(["dataset", "seed"]).itertuples():
        files = sorted(Path(row.trial_dir).glob("checkpoint_*/test_embeddings.npz"))
        if files and row.loss not in found:
            with np.load(files[-1]) as data:
                found[row.loss] = (data["embeddings"], data["labels"])
    return found
