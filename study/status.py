"""`gloss status`: a study at a glance from its storage alone (a folder or a URI, no Ray).

Per phase, trials done, running, pending, failed and diverged; the best validation score so far
per dataset and loss; the time spent and an estimate of what is left; and what `--resume` would
rerun. Outcomes are analysis.select's (a trial's last record); Tune's experiment state
(experiment_state-*.json in each phase folder, plain JSON) says which trials Tune still holds
PENDING, and which it ended itself (ASHA's stops, errors it gave up on). The plan's trial counts
come from study.json (study.provenance), so trials not yet created count as pending."""

import json
import math
import time
from dataclasses import dataclass, field

import pandas as pd

from analysis.load import load_runs
from analysis.select import final_results
from common.layout import children, layout
from common.records import (
    FINISHED,
    PHASES,
    PROVENANCE_FILE,
    RECORD_FILES,
    SEARCH_METRIC,
    Status,
    Tally,
    tally,
)
from common.storage import files_under, join, read_bytes
from study.lease import STALE_AFTER_S, read_lease
from study.progress import clock

STATE_PREFIX, STATE_SUFFIX = "experiment_state-", ".json"


@dataclass
class PhaseStatus:
    """Counts of one phase's trials; `interrupted` are unfinished trials no driver runs."""

    name: str
    total: int | None
    started: bool = False
    done: int = 0
    running: int = 0
    interrupted: int = 0
    pending: int = 0
    failed: int = 0
    diverged: int = 0
    unreadable: int = 0
    damaged_lines: int = 0
    seconds: float = 0.0
    restarts: int = 0
    has_state: bool = False

    @property
    def seen(self) -> int:
        return self.ended + self.running + self.interrupted

    @property
    def ended(self) -> int:
        return self.done + self.failed + self.diverged + self.unreadable

    def left_s(self) -> float | None:
        """Phase time so far / trials ended x trials still to end (None before the first ends)."""
        total = self.total if self.total is not None else self.seen + self.pending
        if not self.ended:
            return None
        return self.seconds / self.ended * max(total - self.ended, 0)


@dataclass
class StudyStatus:
    root: str
    driver: str | None
    phases: list[PhaseStatus] = field(default_factory=list)
    best: pd.DataFrame | None = None
    growth: list[dict] = field(default_factory=list)  # study.json's history of growth


def tune_statuses(root: str, phase: str, files: list[str]) -> dict[str, str] | None:
    """{trial id: Tune status} from the newest experiment state of the phase, or None without one.
    Each trial is a JSON text whose status and trial_id fields are plain (Trial.get_json_state)."""
    names = [
        name
        for name in files
        if name.count("/") == 1 and name.startswith(f"{phase}/{STATE_PREFIX}") and name.endswith(STATE_SUFFIX)
    ]
    if not names:
        return None
    state = json.loads(read_bytes(join(root, max(names))))
    trials = [json.loads(trial_json) for trial_json, _ in state["trial_data"]]
    return {trial["trial_id"]: trial["status"] for trial in trials}


def planned_phases(root: str, files: list[str]) -> list[tuple[str, int | None]]:
    """(phase, trial count) as study.json recorded them, else the phase folders found."""
    if PROVENANCE_FILE in files:
        return [
            (p["name"], p["trials"]) for p in json.loads(read_bytes(join(root, PROVENANCE_FILE)))["phases"]
        ]
    folders = sorted({name.split("/", 1)[0] for name in files if "/" in name})
    return [(name, None) for name in folders if name in PHASES]


def study_files(root: str) -> list[str]:
    """The study's own files, relative to `root`: its top level and its phase folders (never a
    folder that is not one of its phases, such as another study stored inside it)."""
    top, _ = children(root)
    phases = [part.rstrip("/").rsplit("/", 1)[-1] for part in layout(root).parts]
    return sorted(top) + [f"{phase}/{name}" for phase in phases for name, _ in files_under(join(root, phase))]


def study_status(root: str, now: float | None = None) -> StudyStatus:
    """Read the study at `root` (a folder or URI that exists) into counts per phase."""
    now = time.time() if now is None else now
    lease = read_lease(root)
    alive = lease is not None and lease.alive(now, STALE_AFTER_S)
    status = StudyStatus(root, lease.describe(now) if alive else None)
    files = study_files(root)
    runs, final = pd.DataFrame(columns=["phase"]), pd.DataFrame(columns=["phase", "outcome"])
    if PROVENANCE_FILE in files:
        status.growth = json.loads(read_bytes(join(root, PROVENANCE_FILE))).get("growth", [])
    records = [name for name in files if "/" in name and name.rsplit("/", 1)[-1] in RECORD_FILES]
    with_records = sorted({name.split("/", 1)[0] for name in records})
    if with_records:
        runs = load_runs(*(join(root, phase) for phase in with_records))
        final = final_results(runs)
    for name, total in planned_phases(root, files):
        tune = tune_statuses(root, name, files)
        trials, phase_runs = final[final["phase"] == name], runs[runs["phase"] == name]
        status.phases.append(phase_status(name, total, trials, phase_runs, tune, alive))
    status.best = best_scores(runs)
    return status


def phase_status(
    name: str, total: int | None, trials: pd.DataFrame, runs: pd.DataFrame, tune: dict | None, alive: bool
) -> PhaseStatus:
    """Count one phase's trials by outcome, Tune's view deciding the unfinished ones."""
    phase = PhaseStatus(name, total, started=tune is not None or len(trials) > 0, has_state=tune is not None)
    tune = tune or {}
    seen_ids = set()
    for _, trial in trials.iterrows():
        # <dataset>-<loss>-s<seed>-<trial id> (study.naming); a trial that failed
        # before its first report has no record to name its id.
        recorded = trial.get("trial_id")
        trial_id = recorded if isinstance(recorded, str) else str(trial["trial_dir"]).rsplit("-", 1)[-1]
        seen_ids.add(trial_id)
        kind = classify(trial["outcome"], tune.get(trial_id))
        if kind is None:
            kind = Tally.RUNNING if alive else Tally.INTERRUPTED
        setattr(phase, kind, getattr(phase, kind) + 1)
    phase.restarts = int(trials["restarts"].sum()) if "restarts" in trials else 0
    phase.damaged_lines = int(trials["damaged_lines"].sum()) if "damaged_lines" in trials else 0
    queued = sum(status == "PENDING" for trial_id, status in tune.items() if trial_id not in seen_ids)
    not_created = (total - len(seen_ids) - queued) if total is not None else 0
    phase.pending = queued + max(not_created, 0)
    phase.seconds = wall_seconds(runs)
    return phase


def classify(outcome: str, tune_status: str | None) -> Tally | None:
    """The trial's count (common.records.Tally), or None while it is unfinished (still to run:
    running, or interrupted)."""
    if outcome in FINISHED or outcome in (Status.DIVERGED, Status.UNREADABLE):
        return tally(outcome)
    if tune_status in ("RUNNING", "PENDING", "PAUSED"):
        return None  # also a trial Tune restarts after a fault it survives
    if outcome == Status.FAILED or tune_status == "ERROR":
        return Tally.FAILED
    # Stopped without an error: by the scheduler (Tune ended it), or cut off mid-epoch.
    return Tally.DONE if tune_status == "TERMINATED" else None


def wall_seconds(runs: pd.DataFrame) -> float:
    """From the first trial's start to the latest record of the phase (Tune's timestamps)."""
    if not len(runs) or "timestamp" not in runs or "time_total_s" not in runs:
        return 0.0
    starts = runs["timestamp"] - runs["time_total_s"]
    return float(runs["timestamp"].max() - starts.min())


def best_scores(runs: pd.DataFrame) -> pd.DataFrame | None:
    """The best validation score so far per dataset and loss, with the phase and seed holding it."""
    if not len(runs) or SEARCH_METRIC not in runs:
        return None
    scores = pd.to_numeric(runs[SEARCH_METRIC], errors="coerce")
    scored = runs[scores.map(math.isfinite)].assign(**{SEARCH_METRIC: scores})
    if not len(scored):
        return None
    top = scored.loc[scored.groupby(["dataset", "loss"])[SEARCH_METRIC].idxmax()]
    columns = [c for c in ("dataset", "loss", SEARCH_METRIC, "monitor", "phase", "seed", "epoch") if c in top]
    return top[columns].reset_index(drop=True)


STATUS_VERSION = 1  # bumped when a field of `gloss status --json` changes meaning


def as_json(status: StudyStatus) -> dict:
    """`gloss status --json`: the same facts as `render`, for scripts and dashboards (version 1).

    {"version": 1, "study": URI or path, "driver": "pid P on HOST, ..." or null,
     "phases": [{"name", "planned" (null when unknown), "started", "done", "running",
                 "interrupted", "pending", "failed", "diverged", "unreadable", "restarts",
                 "damaged_lines", "seconds", "left_seconds" (null before a trial ends)}],
     "best": [{"dataset", "loss", "best_score", "monitor", "phase", "seed", "epoch"}],
     "growth": [{"time", "command", "added": {"seeds"?, "datasets"?, "losses"?}}],
     "resume": ["<phase>: what --resume reruns", ...]}"""
    phases = []
    for phase in status.phases:
        counts = [str(kind) for kind in Tally]
        phases.append(
            {
                "name": phase.name,
                "planned": phase.total,
                "started": phase.started,
                **{kind: getattr(phase, kind) for kind in counts},
                "restarts": phase.restarts,
                "damaged_lines": phase.damaged_lines,
                "seconds": round(phase.seconds, 1),
                "left_seconds": None if phase.left_s() is None else round(phase.left_s(), 1),
            }
        )
    best = [] if status.best is None else json.loads(status.best.to_json(orient="records"))
    resume = [line for phase in status.phases if phase.started for line in resume_lines(phase)]
    resume += [f"{p.name}: all {p.total} trials (not started)" for p in status.phases if not p.started]
    return {
        "version": STATUS_VERSION,
        "study": status.root,
        "driver": status.driver,
        "phases": phases,
        "best": best,
        "growth": status.growth,
        "resume": [] if status.driver else resume,
    }


def render(status: StudyStatus) -> str:
    """The text `gloss status` prints."""
    lines = [f"study {status.root}"]
    lines.append(f"driver: running ({status.driver})" if status.driver else "driver: none (no live lease)")
    for growth in status.growth:
        added = "; ".join(f"{key} {json.dumps(values)}" for key, values in growth["added"].items())
        lines.append(f"grown {growth['time']}: {added} ({' '.join(growth['command'])})")
    rerun, spent, left, unknown = [], 0.0, 0.0, False
    for phase in status.phases:
        if not phase.started:
            lines.append(f"{phase.name}: not started ({phase.total} trials planned)")
            rerun.append(f"{phase.name}: all {phase.total} trials (not started)")
            unknown = True
            continue
        lines.append(phase_line(phase))
        spent += phase.seconds
        estimate = phase.left_s()
        if estimate is None and (phase.pending or phase.running or phase.interrupted):
            unknown = True
        left += estimate or 0.0
        rerun += resume_lines(phase)
    if status.best is not None:
        lines.append("best validation score so far:")
        for _, row in status.best.iterrows():
            where = ", ".join(f"{c} {row[c]}" for c in ("phase", "seed", "epoch") if c in row)
            lines.append(f"  {row['dataset']:<8} {row['loss']:<12} {row[SEARCH_METRIC]:.4f} ({where})")
    to_run = any(p.running or p.interrupted or p.pending or not p.started for p in status.phases)
    estimate = f"about {clock(left)} left" + (" for the phases started" if unknown else "")
    estimate = estimate if to_run else "nothing left to run"
    lines.append(f"time: {clock(spent)} spent, {estimate}")
    if status.driver:
        lines.append("--resume: a driver holds the study; `gloss run --resume` is refused while it runs")
    elif rerun:
        lines.append("--resume would rerun: " + "; ".join(rerun))
    else:
        lines.append("--resume would rerun nothing")
    return "\n".join(lines)


def phase_line(phase: PhaseStatus) -> str:
    total = phase.total if phase.total is not None else phase.seen + phase.pending
    parts = [f"{phase.done}/{total} done", f"{phase.running} running"]
    if phase.interrupted:
        parts.append(f"{phase.interrupted} interrupted")
    parts += [f"{phase.pending} pending", f"{phase.failed} failed", f"{phase.diverged} diverged"]
    if phase.unreadable:
        parts.append(f"{phase.unreadable} unreadable")
    if phase.restarts:
        parts.append(f"{phase.restarts} restarts survived")
    if phase.damaged_lines:
        parts.append(f"{phase.damaged_lines} damaged record lines skipped")
    return f"{phase.name}: " + ", ".join(parts)


def resume_lines(phase: PhaseStatus) -> list[str]:
    """What `gloss run --resume` does to the phase when no driver runs it."""
    if not phase.has_state:
        return [f"{phase.name}: starts over (Tune saved no state yet)"]
    parts = []
    if phase.interrupted:
        parts.append(f"{phase.interrupted} interrupted trials from their last checkpoint")
    if phase.failed:
        parts.append(f"{phase.failed} failed trials from their last checkpoint")
    if phase.pending:
        parts.append(f"{phase.pending} trials not yet started")
    return [f"{phase.name}: " + ", ".join(parts)] if parts else []
