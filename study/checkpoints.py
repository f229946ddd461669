"""What a study keeps of its trials' checkpoints, and how a resumed study finds them.

Tune keeps the newest `checkpoint.keep` per trial; once a trial ends, its trainer state is
deleted from storage, from the driver, through the storage's own filesystem (a local folder,
s3://, gs://: whatever Ray's storage is). A resumed study first brings each trial's latest
checkpoint up to date with storage (CatchUpWithStorage)."""

import json
import posixpath
from dataclasses import dataclass

from pyarrow import fs as pafs
from ray import tune

from study.missing_records import restore_missing_records
from study.naming import resume_in_folder
from study.restored_search import reconcile_restored_search
from study.spec import CheckpointPolicy
from trainables.checkpoint import RECORD_FILE, STATE_FILE, read_record

CHECKPOINT_PREFIX = "checkpoint_"
PARAMS_FILE = "params.json"  # the config Tune writes in every trial folder as the trial starts


def checkpoint_folders(filesystem: pafs.FileSystem, trial_path: str) -> list[pafs.FileInfo]:
    """A trial's checkpoint folders in storage, oldest first (Tune numbers them in order)."""
    found = filesystem.get_file_info(pafs.FileSelector(trial_path, allow_not_found=True))
    folders = [
        f for f in found if f.type == pafs.FileType.Directory and f.base_name.startswith(CHECKPOINT_PREFIX)
    ]
    return sorted(folders, key=lambda folder: folder.base_name)


def delete_trial_states(filesystem: pafs.FileSystem, trial_path: str) -> int:
    """Delete the trainer state from every checkpoint folder of a trial, and each folder left
    with nothing but its record, except the last (the trial's final record); other files (saved
    test embeddings) stay. Returns the bytes freed."""
    freed = 0
    folders = checkpoint_folders(filesystem, trial_path)
    for folder in folders:
        files = filesystem.get_file_info(pafs.FileSelector(folder.path, recursive=True))
        for info in files:
            if info.base_name == STATE_FILE and info.type == pafs.FileType.File:
                filesystem.delete_file(info.path)
                freed += info.size
        kept = {info.base_name for info in files if info.type == pafs.FileType.File} - {
            STATE_FILE,
            RECORD_FILE,
        }
        if folder is not folders[-1] and not kept:
            filesystem.delete_dir(folder.path)
    return freed


class DeleteFinishedStates(tune.Callback):
    """On a trial's completion (finished, or stopped by the scheduler), delete its trainer states.

    Trials that end in an error keep theirs: `gloss run --resume` restarts them from it. A study
    interrupted by Ctrl-C or a lost driver does not complete its running trials (Tune does not
    call on_trial_complete for them), so they too keep their states and resume."""

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        delete_trial_states(trial.storage.storage_filesystem, trial.storage.trial_fs_path)


@dataclass(frozen=True)
class NewestCheckpoint:
    """A trial's newest checkpoint in storage: its folder, Tune's index for it, its record."""

    path: str
    index: int
    record: dict

    @property
    def ended(self) -> bool:
        """Whether the trial had ended when this checkpoint was written."""
        return self.record.get("status") != "running"


def checkpoint_records(filesystem: pafs.FileSystem, trial_path: str) -> list[tuple[str, dict]]:
    """Each checkpoint folder of the trial that holds its epoch's record: its name and the
    record, oldest first."""
    found = []
    for folder in checkpoint_folders(filesystem, trial_path):
        record_path = f"{folder.path}/{RECORD_FILE}"
        if filesystem.get_file_info(record_path).type == pafs.FileType.File:
            with filesystem.open_input_stream(record_path) as stream:
                found.append((folder.base_name, read_record(stream.read().decode())))
    return found


def newest_checkpoint(trial_path: str, found: list[tuple[str, dict]]) -> NewestCheckpoint | None:
    """The newest of a trial's checkpoints that hold their record (None when it has none yet)."""
    if not found:
        return None
    name, record = found[-1]
    return NewestCheckpoint(f"{trial_path}/{name}", int(name.removeprefix(CHECKPOINT_PREFIX)), record)


class CatchUpWithStorage(tune.Callback):
    """When a study resumes, point each trial Tune is about to restart at its newest checkpoint
    in storage, before any trial starts.

    Tune saves its experiment state (each trial's status and latest checkpoint) every so often,
    not at every checkpoint, so a driver killed between two saves leaves a state behind storage:
    a trial that had finished reads as pending, from an older checkpoint that Tune's rotation or
    DeleteFinishedStates may already have deleted. Restored from there it would train again, or
    fail ("does not exist on storage anymore"). Its checkpoint folders are the truth: each holds
    its epoch's record, and records the driver had not yet copied to storage, of every trial,
    ended or not, are restored from them (study/missing_records.py). A finished trial restarted
    from its last checkpoint ends at once (trainables/trainable.py), and Tune's result for it is
    its final record, which the search's selection reads.

    This reaches into Ray's trial bookkeeping (the checkpoint manager, the storage context's
    checkpoint index): tests/test_stale_experiment_state.py pins the behaviour."""

    def setup(self, **info) -> None:
        self.caught_up = False
        self.checked: set[str] = set()

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self.caught_up:
            return
        self.caught_up = True  # the first step of a run comes before any trial starts
        reconcile_restored_search(trials)
        if trials:
            adopt_orphans(trials)
        for trial in trials:
            self.check(trial, resumes=trial.status == trial.PENDING)
            self.checked.add(trial.trial_id)

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        """A trial created since: one asked for again in the folder of a trial Tune lost
        (study/restored_search.py) continues from what that folder holds; a new one finds
        nothing. Tune restores a trial from its checkpoint right after this call."""
        if trial.trial_id not in self.checked:
            self.check(trial)
            self.checked.add(trial.trial_id)

    @staticmethod
    def check(trial, resumes: bool = True) -> None:
        """Restore the records storage lacks of a trial, ended or not; point one that `resumes`
        at its newest checkpoint."""
        found = checkpoint_records(trial.storage.storage_filesystem, trial.storage.trial_fs_path)
        restore_missing_records(trial, found)
        if resumes:
            catch_up(trial, found)


def adopt_orphans(trials: list) -> None:
    """Trial folders in storage that Tune's restored state does not hold: a driver killed while
    copying a sync can leave a trial's files in storage but neither Tune's state nor the
    searcher's. A trial given later with the same config (a grid's or the final phase's)
    continues in that folder instead of training again beside it."""
    storage = trials[0].storage
    filesystem = storage.storage_filesystem
    known = {posixpath.basename(trial.storage.trial_fs_path) for trial in trials}
    selector = pafs.FileSelector(storage.experiment_fs_path, allow_not_found=True)
    for folder in filesystem.get_file_info(selector):
        params = f"{folder.path}/{PARAMS_FILE}"
        if folder.type != pafs.FileType.Directory or folder.base_name in known:
            continue
        if filesystem.get_file_info(params).type == pafs.FileType.File:
            with filesystem.open_input_stream(params) as stream:
                resume_in_folder(json.loads(stream.read()), folder.base_name)


def catch_up(trial, found: list[tuple[str, dict]]) -> None:
    """Make the newest of the trial's checkpoints `found` in storage the one Tune restarts it
    from. Tune's manager is replaced, not told: it would delete the checkpoints it tracks, gone
    or not."""
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult

    storage = trial.storage
    newest = newest_checkpoint(storage.trial_fs_path, found)
    if newest is None or (trial.checkpoint is not None and trial.checkpoint.path == newest.path):
        return
    metrics = {**newest.record, "training_iteration": newest.record["epoch"]}
    checkpoint = tune.Checkpoint(newest.path, filesystem=storage.storage_filesystem)
    manager = _CheckpointManager(trial.run_metadata.checkpoint_manager.checkpoint_config)
    manager.register_checkpoint(_TrainingResult(checkpoint, metrics))
    trial.run_metadata.checkpoint_manager = manager
    storage.current_checkpoint_index = newest.index  # as Trial.on_checkpoint leaves it
    if newest.ended:
        trial.update_last_result(metrics)
    trial.invalidate_json_state()
    trial.run_metadata.invalidate_cache()


def checkpoint_settings(policy: CheckpointPolicy) -> tuple[tune.CheckpointConfig, list[tune.Callback]]:
    """Tune's checkpoint config and the callbacks that carry out `policy` on the driver."""
    callbacks: list[tune.Callback] = [CatchUpWithStorage()]
    if policy.delete_finished:
        callbacks.append(DeleteFinishedStates())
    return tune.CheckpointConfig(num_to_keep=policy.keep), callbacks
