"""The run record: what a trial reports each epoch and the analysis reads back, defined once.

A record is one flat JSON object per epoch in a trial's `result.json`, written by
`trainables.trainable` and read by `analysis.load` (which imports neither `study` nor
`trainables`: this module is the contract between them)."""

from enum import StrEnum

RECORD_VERSION = 1  # bumped when a field changes meaning; every record carries it

# Who the trial is: on every record, so a record read alone says what it measured. `loss` is the
# study's row name (e.g. gloss_o+ce), `loss_function` the registry loss it trains with.
IDENTITY = ("dataset", "loss", "loss_function", "seed", "model", "fidelity", "study", "phase")


class Status(StrEnum):
    """A trial's state, as its records say, and its outcome, as the analysis reads it (`stopped`,
    `failed` and `unreadable` are the reader's words: a trial's records never say so themselves)."""

    RUNNING = "running"
    COMPLETED = "completed"  # trained for its whole epoch budget
    EARLY_STOPPED = "early_stopped"  # validation stopped improving for `patience` epochs
    DIVERGED = "diverged"  # the loss or its gradient stopped being finite
    STOPPED = "stopped"  # ended before its budget by the scheduler (ASHA), without an error
    FAILED = "failed"  # its process raised, and no restart finished it
    UNREADABLE = "unreadable"  # no record of it could be read


class Tally(StrEnum):
    """How `gloss status`, its --json and the progress line count a phase's trials: the outcomes
    above grouped (done: finished or stopped by the scheduler), and the states only the running
    study knows (running, interrupted, pending)."""

    DONE = "done"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    PENDING = "pending"
    FAILED = "failed"
    DIVERGED = "diverged"
    UNREADABLE = "unreadable"


def tally(outcome: str) -> Tally | None:
    """The count an ended trial's outcome falls in; None for a trial that has not ended."""
    if outcome in (Status.COMPLETED, Status.EARLY_STOPPED, Status.STOPPED):
        return Tally.DONE
    if outcome in (Status.FAILED, Status.DIVERGED, Status.UNREADABLE):
        return Tally(outcome)
    return None


class DamagedRecordWarning(UserWarning):
    """A trial's records hold lines that are not whole JSON objects (a writer killed mid-append
    tears the last one): readers skip them and read the rest of the trial and the study."""


# Trials that trained to their own end: only they can win a search or count in a result table.
FINISHED = (Status.COMPLETED, Status.EARLY_STOPPED)

# The trial's best validation score so far (its monitor: head macro-F1, or the validation
# silhouette in standalone mode): what searches maximise.
SEARCH_METRIC, SEARCH_MODE = "best_score", "max"
# Test macro-F1 at the best validation epoch (the probe's in standalone mode): what tables report.
RESULT_METRIC = "selected_test_macro_f1"

# A trial folder's record files, as Ray Tune writes them: the records (one JSON object per line),
# the errors it met ("Failure # N" entries) and the trial's config (written before any record).
RESULT_FILE, ERROR_FILE, PARAMS_FILE = "result.json", "error.txt", "params.json"
RECORD_FILES = (RESULT_FILE, ERROR_FILE, PARAMS_FILE)

# A study's folder (<storage>/<study>): its provenance file and one folder per phase, each a Ray
# Tune experiment of trial folders.
PROVENANCE_FILE = "study.json"
PHASES = ("grid", "search", "ablation", "final")


# A trial's settings in the analysis' frame: its TrialConfig flattened, one column per leaf.
CONFIG_PREFIX = "config"


def config_column(*keys: str) -> str:
    """The frame column of a trial setting: config_column("loss_params", "sigma") is
    'config/loss_params/sigma'."""
    return "/".join((CONFIG_PREFIX, *keys))


def setting_keys(column: str) -> tuple[str, ...]:
    """The setting a config column holds, as keys ('config/loss_params/sigma' -> ('loss_params',
    'sigma')); () for a column that holds none."""
    head, *keys = column.split("/")
    return tuple(keys) if head == CONFIG_PREFIX and keys else ()
