"""The files a trial's records go to (result.json, progress.csv): Ray Tune's own loggers, made to
keep what this driver already wrote when a trial restarts.

When a trial restarts from a checkpoint, Ray's loggers first copy the trial's file back from
storage over the driver's own, so that a driver started afresh continues the file where storage
has it. Storage only gets the driver's copy at Tune's next experiment sync (every ten seconds or
more), so in a run whose driver lives on, a trial whose worker died lost the records written since
that sync: a trial of 0.4 s epochs killed in epoch 3 kept only its records from epoch 3 on
(tests/test_trial_faults.py, `sigkill-share-policy`). Here the driver's file, when it has one,
is the newer and is kept."""

from pathlib import Path

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback


class _KeepDriversRecords:
    """Restore a trial's file from storage only when this driver has none of its own."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        if not Path(trial.local_path, file_name).exists():
            super()._restore_from_remote(file_name, trial)


class JsonRecords(_KeepDriversRecords, JsonLoggerCallback):
    """result.json: one JSON record per reported epoch."""


class CsvRecords(_KeepDriversRecords, CSVLoggerCallback):
    """progress.csv: the same records as a table."""


def record_writers() -> list:
    """The callbacks that write every trial's record files."""
    return [JsonRecords(), CsvRecords()]
