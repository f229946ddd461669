"""What a folder or URI is to gloss: a study (<storage>/<name>, with study.json or phase folders),
one phase of it (a Ray Tune experiment), one trial, or none of these.

Readers use it to read a study's own phase folders only, so a folder that is not a study is
refused in one sentence and a study never reads another one stored inside or beside it."""

from dataclasses import dataclass

import pyarrow.fs

from common.records import PHASES, PROVENANCE_FILE, RESULT_FILE
from common.storage import below, filesystem

EXPERIMENT_STATE = "experiment_state-"


def phase_order(folder: str) -> tuple[int, int] | None:
    """Where a study's folder stands among its experiments: `grid`, then a grown study's
    `grid+1`, `grid+2` (study/growth.py), in the order of PHASES; None for other folders."""
    phase, _, stage = folder.partition("+")
    if phase not in PHASES or not (stage == "" or stage.isdigit()):
        return None
    return PHASES.index(phase), int(stage or 0)


@dataclass(frozen=True)
class Layout:
    """`kind` is study, phase, trial or None; `parts` the folders holding the trial records to
    read (a study's phase folders, or the location itself)."""

    location: str
    kind: str | None
    parts: tuple[str, ...]


def children(location: str) -> tuple[set[str], set[str]]:
    """The names of the files and of the folders directly in `location` (one listing)."""
    fs, path = filesystem(location)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=False, allow_not_found=True))
    names = {info.path.rstrip("/").rsplit("/", 1)[-1]: info.type for info in infos}
    files = {name for name, kind in names.items() if kind == pyarrow.fs.FileType.File}
    return files, {name for name, kind in names.items() if kind == pyarrow.fs.FileType.Directory}


def layout(location: str) -> Layout:
    """Which of study, phase or trial `location` is, from one listing of its top level."""
    files, folders = children(location)
    if RESULT_FILE in files:
        return Layout(location, "trial", (location,))
    experiments = sorted((name for name in folders if phase_order(name)), key=phase_order)
    phases = tuple(below(location, name) for name in experiments)
    if PROVENANCE_FILE in files or phases:
        return Layout(location, "study", phases)
    name = location.rstrip("/").rsplit("/", 1)[-1]
    if phase_order(name) or any(f.startswith(EXPERIMENT_STATE) for f in files):
        return Layout(location, "phase", (location,))
    return Layout(location, None, ())
