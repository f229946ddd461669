"""Load studies (Ray Tune experiments) into one tidy DataFrame without starting Ray: one row per
trial x epoch, a column for every metric and (as config/...) every config field.

A study is a local folder or a URI (s3://bucket/prefix/study, or any scheme common.storage
resolves). Only the record files are read (result.json, error.txt, and params.json where a trial
never reported), never checkpoints; from object storage in parallel threads, as each read waits
on the network. A columnar cache (analysis.cache) remembers each trial's file sizes and
modification times, so a later load re-reads only trials whose files changed."""

import concurrent.futures
import functools
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs

from analysis.cache import CACHE_DIR, cache_folder, read_cache, write_cache
from common.records import (
    CONFIG_PREFIX,
    ERROR_FILE,
    IDENTITY,
    PARAMS_FILE,
    RECORD_FILES,
    RECORD_VERSION,
    RESULT_FILE,
    DamagedRecordWarning,
    Status,
    config_column,
)
from common.storage import below, files_under, filesystem, is_uri, list_files

# Where a trial's config holds each identity field: `loss` is the study's row (config `method`;
# records older than rows name the registry loss), `loss_function` the registry loss.
CONFIG_KEYS = {"loss": ("method", "loss"), "loss_function": ("loss",)}
READ_THREADS = 32
EMBEDDINGS = re.compile(r"(?P<trial>[^/]+)/checkpoint_[^/]+/test_embeddings\.npz")


@dataclass(frozen=True)
class Trial:
    """One trial folder: its location as the frame's trial_dir shows it (a path or URI), its path
    on the study's filesystem, and its record files with their (size, mtime_ns)."""

    location: str
    path: str
    files: dict[str, tuple[int, int]]

    def signature(self) -> list[int]:
        """What changes when the trial's records change: size and mtime of result and error."""
        return [value for name in (RESULT_FILE, ERROR_FILE) for value in self.files.get(name, (-1, -1))]


def trial_folders(location: str, fs: pyarrow.fs.FileSystem, path: str) -> list[Trial]:
    """Every trial folder under `location` (a study, a phase, or a single trial folder; `path` on
    `fs`), from one listing of its files."""
    found: dict[str, dict[str, tuple[int, int]]] = {}
    for relative, info in list_files(fs, path):
        folder, _, name = relative.rpartition("/")
        if name in RECORD_FILES and CACHE_DIR not in folder.split("/"):
            found.setdefault(folder, {})[name] = (info.size, info.mtime_ns)
    return [
        Trial(below(location, folder), f"{path.rstrip('/')}/{folder}".rstrip("/"), files)
        for folder, files in sorted(found.items())
        if RESULT_FILE in files
    ]


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


def read_text(fs: pyarrow.fs.FileSystem, path: str) -> str:
    with fs.open_input_stream(path, compression=None) as handle:
        return handle.read().decode()


def parse_records(text: str, where: str) -> tuple[list[dict], list[int]]:
    """The JSON objects of a result.json text, one per line, and the numbers (from 1) of the
    lines that are not one: skipped with one warning naming `where` and those lines, as a
    database replaying its log skips a torn tail instead of refusing the whole log."""
    records, damaged = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged.append(number)
    if damaged:
        lines = ", ".join(map(str, damaged))
        warnings.warn(
            f"{where}: line {lines} of {RESULT_FILE} is not a whole record (torn or not JSON); skipped",
            DamagedRecordWarning,
            stacklevel=2,
        )
    return records, damaged


def latest_per_epoch(records: list[dict]) -> tuple[list[dict], int]:
    """The trial's records with each epoch once, and how many were superseded. A trial restored
    from a checkpoint older than its last record trains that epoch again and logs it again (Tune
    logs an epoch's record before its checkpoint is registered, so a driver stopped between the
    two resumes the trial one checkpoint back): as in a log replay, the later record of an epoch
    supersedes the earlier one, in the earlier one's place."""
    latest: dict = {}
    for record in records:
        latest[record.get("epoch", id(record))] = record
    return list(latest.values()), len(records) - len(latest)


def read_trial(fs: pyarrow.fs.FileSystem, trial: Trial) -> tuple[list[dict], dict]:
    """The trial's records (their config removed) and one row of facts about the trial: its
    flattened config, folder, last error line, restarts (Ray appends a "Failure # N" entry to
    error.txt at each failure it restarts from, or gives up on), damaged record lines and
    epochs trained again after a resume (latest_per_epoch). A trial
    that failed before its first report still gives one record, marked failed; one whose records
    cannot be read at all, one marked unreadable."""
    try:
        text = read_text(fs, f"{trial.path}/{RESULT_FILE}")
    except (OSError, UnicodeDecodeError) as error:
        warnings.warn(f"{trial.location}: {RESULT_FILE} unreadable ({error})", DamagedRecordWarning, 2)
        text = None
    records, damaged = parse_records(text or "", trial.location)
    records, replayed = latest_per_epoch(records)
    config = records[-1].get("config") if records else None
    if config is None and PARAMS_FILE in trial.files:
        config = json.loads(read_text(fs, f"{trial.path}/{PARAMS_FILE}"))
    for record in records:
        record.pop("config", None)
    errors = read_text(fs, f"{trial.path}/{ERROR_FILE}").strip() if ERROR_FILE in trial.files else ""
    facts = {
        **flatten(config or {}, CONFIG_PREFIX),
        "trial_dir": trial.location,
        "experiment": Path(trial.location).parent.name,
        "error": errors.splitlines()[-1] if errors else "",
        "failures": sum(line.startswith("Failure # ") for line in errors.splitlines()),
        "damaged_lines": len(damaged),
        "replayed_epochs": replayed,
    }
    if not records:
        unreadable = text is None or bool(damaged)
        records = [{"status": Status.UNREADABLE if unreadable else Status.FAILED}]
    return records, facts


def frame_of(trials: list[tuple[list[dict], dict]]) -> pd.DataFrame:
    """Records of many trials (read_trial's answers), each joined with its trial's facts."""
    records, owner, facts = [], [], []
    for index, (trial_records, trial_facts) in enumerate(trials):
        records += trial_records
        owner += [index] * len(trial_records)
        facts.append(trial_facts)
    if not records:
        return pd.DataFrame()
    frame = pd.concat([pd.DataFrame(records), pd.DataFrame(facts).iloc[owner].reset_index(drop=True)], axis=1)
    for key in IDENTITY:
        for source in (config_column(name) for name in CONFIG_KEYS.get(key, (key,))):
            if source in frame:
                frame[key] = frame[key].fillna(frame[source]) if key in frame else frame[source]
    return frame


def read_trials(fs: pyarrow.fs.FileSystem, trials: list[Trial]) -> pd.DataFrame:
    """Records of many trials, read one after another."""
    return frame_of([read_trial(fs, trial) for trial in trials])


def read_in_parallel(fs: pyarrow.fs.FileSystem, trials: list[Trial], per_process: int = 1000) -> pd.DataFrame:
    """read_trials, in threads from remote storage (each read waits on the network), split
    across processes for many local trials (a first load, bound by JSON parsing)."""
    if not isinstance(fs, pyarrow.fs.LocalFileSystem) and len(trials) > 1:
        with concurrent.futures.ThreadPoolExecutor(min(READ_THREADS, len(trials))) as pool:
            return frame_of(list(pool.map(functools.partial(read_trial, fs), trials)))
    workers = min(os.cpu_count() or 1, len(trials) // per_process)
    if workers < 2:
        return read_trials(fs, trials)
    chunks = [trials[i::workers] for i in range(workers)]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        return pd.concat(list(pool.map(read_trials, [fs] * workers, chunks)), ignore_index=True)


def tidy_types(frame: pd.DataFrame) -> pd.DataFrame:
    """One type per column, so the frame is the same whether read from records or the cache:
    numbers where every value is a number, text where a column mixes numbers and text, and None
    for a missing value among others (as parquet reads it back; a field only some records carry,
    such as Tune's `should_checkpoint`, would otherwise be NaN read fresh and None cached)."""
    for column in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c].dtype)]:
        values = frame[column].dropna()
        kinds = {type(v) for v in values}
        if kinds and kinds <= {int, float}:
            frame[column] = pd.to_numeric(frame[column])
        elif len(kinds) > 1:
            frame[column] = frame[column].map(lambda v: v if v is None else str(v))
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def load_study(location: str) -> pd.DataFrame:
    """One study's records (a folder or a URI), through its cache."""
    fs, path = filesystem(location)
    trials = trial_folders(location, fs, path)
    manifest = {trial.location: trial.signature() for trial in trials}
    folder = cache_folder(location)
    cache, cached_manifest = read_cache(folder)
    stale = [trial for trial in trials if cached_manifest.get(trial.location) != manifest[trial.location]]
    if cache is not None and not stale and len(cached_manifest) == len(manifest):
        return cache
    kept = None
    if cache is not None:
        current = cache["trial_dir"].isin(set(manifest))
        kept = cache[current & ~cache["trial_dir"].isin({trial.location for trial in stale})]
    fresh = read_in_parallel(fs, stale)
    frame = tidy_types(pd.concat([f for f in (kept, fresh) if f is not None and len(f)], ignore_index=True))
    write_cache(folder, frame, manifest)
    return frame


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """A tidy frame of every trial x epoch under `paths`: study folders or URIs written by gloss
    (`gloss run --storage s3://bucket/prefix` writes s3://bucket/prefix/<study>)."""
    frames = [load_study(str(p) if is_uri(str(p)) else str(Path(p).expanduser())) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise FileNotFoundError(f"no trial records (result.json) under {', '.join(map(str, paths))}")
    runs = tidy_types(pd.concat(frames, ignore_index=True)) if len(frames) > 1 else frames[0]
    check_record_version(runs)
    return runs


def check_record_version(runs: pd.DataFrame) -> None:
    """Refuse records a newer gloss-study wrote, whose fields may mean what this one does not know
    (records from before versions were written have none and are version 1)."""
    newest = pd.to_numeric(runs.get("record_version", pd.Series(dtype=float)), errors="coerce").max()
    if pd.notna(newest) and newest > RECORD_VERSION:
        raise ValueError(
            f"these records are version {int(newest)}, newer than the version {RECORD_VERSION} this "
            "gloss-study reads; upgrade gloss-study to analyse them."
        )


def saved_test_embeddings(final: pd.DataFrame) -> dict[str, tuple]:
    """Per loss, the saved test embeddings (and labels) of one trial, when trials saved them
    (`save_embeddings: true`): the first dataset and seed with a file. Each phase folder is
    listed once; only the chosen trials' files are read."""
    rows = final.sort_values(["dataset", "seed"])
    saved = embedding_files(rows["trial_dir"].unique())
    found = {}
    for row in rows.itertuples():
        if row.loss not in found and row.trial_dir in saved:
            fs, path = filesystem(saved[row.trial_dir])
            with fs.open_input_file(path) as handle, np.load(io.BytesIO(handle.read())) as data:
                found[row.loss] = (data["embeddings"], data["labels"])
    return found


def embedding_files(trial_dirs: list[str]) -> dict[str, str]:
    """Per trial folder, the location of its newest checkpoint's test_embeddings.npz, if any."""
    wanted, saved = set(trial_dirs), {}
    for phase in sorted({parent(trial) for trial in wanted}):
        for relative in sorted(relative for relative, _ in files_under(phase)):
            match = EMBEDDINGS.fullmatch(relative)
            if match and below(phase, match["trial"]) in wanted:
                saved[below(phase, match["trial"])] = below(phase, relative)
    return saved


def parent(location: str) -> str:
    """The folder holding `location` (the inverse of `below`)."""
    return location.rstrip("/").rsplit("/", 1)[0] if is_uri(location) else str(Path(location).parent)
