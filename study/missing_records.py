"""Records a killed driver had not yet copied to storage, recovered from the trial's checkpoints.

The driver writes a trial's result.json and copies it to storage at Tune's experiment syncs; the
trial's checkpoints reach storage from its worker as they are written, each with its epoch's
record. A driver killed between two syncs so leaves checkpoints newer than the records: a trial
that finished reads as unfinished (its final record missing), and a restarted one would leave a
gap before the epoch it restarts from. Before a resumed study starts its trials, each checkpoint
record newer than the trial's last recorded epoch is appended, as Tune would have written it."""

import json
from pathlib import Path

from pyarrow import fs as pafs

from common.records import RESULT_FILE


def recorded_epochs(text: str) -> list[int]:
    """The epochs of a result.json's whole records (a torn last line is not one)."""
    epochs = []
    for line in text.splitlines():
        try:
            epochs.append(json.loads(line)["epoch"])
        except (ValueError, KeyError, TypeError):
            continue
    return epochs


def last_epoch(text: str) -> int:
    return max(recorded_epochs(text), default=0)


def restore_missing_records(trial, checkpoints: list[tuple[str, dict]]) -> None:
    """Complete the trial's result.json in storage: from this driver's own copy where it holds
    later epochs (a driver on the same machine, killed before its copy reached storage), then
    with the records of its `checkpoints` (folder name and record, oldest first) still missing.
    The driver's copy is then restored from storage when the trial starts."""
    filesystem, folder = trial.storage.storage_filesystem, trial.storage.trial_fs_path
    path = f"{folder}/{RESULT_FILE}"
    stored = text = ""
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        with filesystem.open_input_stream(path) as stream:
            stored = text = stream.read().decode()
    local = Path(trial.local_path, RESULT_FILE)
    if local.is_file() and last_epoch(local.read_text()) > last_epoch(text):
        text = local.read_text()  # this machine's driver wrote it, and was killed before copying
    missing = [(name, record) for name, record in checkpoints if record["epoch"] > last_epoch(text)]
    if not missing and text == stored:
        return
    rows = [as_tune_wrote_it(trial, name, record) for name, record in missing]
    if text and not text.endswith("\n"):
        text += "\n"  # a torn last line stays one line, which readers skip
    with filesystem.open_output_stream(path) as stream:
        stream.write((text + "".join(json.dumps(row, default=str) + "\n" for row in rows)).encode())


def as_tune_wrote_it(trial, checkpoint_name: str, record: dict) -> dict:
    """A checkpoint's record with the fields Tune adds to what a trial reports."""
    return {
        **record,
        "training_iteration": record["epoch"],
        "trial_id": trial.trial_id,
        "checkpoint_dir_name": checkpoint_name,
        "config": trial.config,
    }
