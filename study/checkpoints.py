"""What a study keeps of its trials' checkpoints: Tune keeps the newest `checkpoint.keep` per
trial; once a trial ends, its trainer state is deleted from storage, from the driver, through
the storage's own filesystem (a local folder, s3://, gs://: whatever Ray's storage is)."""

from pyarrow import fs as pafs
from ray import tune

from study.spec import CheckpointPolicy
from trainables.checkpoint import STATE_FILE

CHECKPOINT_PREFIX = "checkpoint_"


def delete_trial_states(filesystem: pafs.FileSystem, trial_path: str) -> int:
    """Delete the trainer state from every checkpoint folder of a trial, and each folder left
    empty; other files (saved test embeddings, end markers) stay. Returns the bytes freed."""
    freed = 0
    folders = filesystem.get_file_info(pafs.FileSelector(trial_path, allow_not_found=True))
    for folder in folders:
        if folder.type != pafs.FileType.Directory or not folder.base_name.startswith(CHECKPOINT_PREFIX):
            continue
        files = filesystem.get_file_info(pafs.FileSelector(folder.path, recursive=True))
        for info in files:
            if info.base_name == STATE_FILE and info.type == pafs.FileType.File:
                filesystem.delete_file(info.path)
                freed += info.size
        if all(info.base_name == STATE_FILE for info in files if info.type == pafs.FileType.File):
            filesystem.delete_dir(folder.path)
    return freed


class DeleteFinishedStates(tune.Callback):
    """On a trial's completion (finished, or stopped by the scheduler), delete its trainer states.

    Trials that end in an error keep theirs: `gloss run --resume` restarts them from it. A study
    interrupted by Ctrl-C or a lost driver does not complete its running trials (Tune does not
    call on_trial_complete for them), so they too keep their states and resume."""

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        delete_trial_states(trial.storage.storage_filesystem, trial.storage.trial_fs_path)


def checkpoint_settings(policy: CheckpointPolicy) -> tuple[tune.CheckpointConfig, list[tune.Callback]]:
    """Tune's checkpoint config and the callbacks that carry out `policy` on the driver."""
    callbacks = [DeleteFinishedStates()] if policy.delete_finished else []
    return tune.CheckpointConfig(num_to_keep=policy.keep), callbacks
