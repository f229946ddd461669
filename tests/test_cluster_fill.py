"""Filling a cluster, and what a study keeps: through `gloss run` on a local Ray with fewer CPUs
than trials, every trial the study may run waits PENDING at once (the placement-group requests an
autoscaler sees), trainer states are checkpointed while trials run and deleted when they finish,
and the saved test embeddings stay for the report."""

from pathlib import Path

import pytest
import yaml
from pyarrow import fs as pafs

from analysis import final_results, load_runs
from analysis.load import saved_test_embeddings
from study.cli import main
from study.progress import Progress
from trainables.checkpoint import EMBEDDINGS_FILE, RECORD_FILE, STATE_FILE

TRIALS, CPUS, EPOCHS = 6, 2, 3
SEEN: dict[str, list] = {"pending": [], "checkpoints": []}


class Recorder(Progress):
    """gloss's progress callback, also recording how many trials are PENDING at each step of Tune's
    loop and which files each persisted checkpoint holds in storage."""

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        SEEN["pending"].append(sum(trial.status == "PENDING" for trial in trials))

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint, **info) -> None:
        infos = checkpoint.filesystem.get_file_info(pafs.FileSelector(checkpoint.path))
        SEEN["checkpoints"].append({info.base_name for info in infos})


@pytest.fixture(scope="module")
def study(tmp_path_factory, data_dir, local_ray) -> Path:
    """Six frozen tiny-BERT trials of three epochs on 2 CPUs, a state every epoch (the policy
    that decides how often is tested in test_checkpoint_policy and test_trial_faults)."""
    folder = tmp_path_factory.mktemp("fill")
    spec = {
        "name": "fill",
        "kind": "grid",
        "model": "tiny-bert",
        "datasets": ["r8"],
        "losses": ["ce", "gloss"],
        "seeds": [0, 1, 2],
        "checkpoint": {"every_epochs": 1},
        "training": {
            "train_size": 48,
            "eval_size": 40,
            "max_length": 32,
            "epochs": EPOCHS,
            "patience": None,
            "save_embeddings": True,
        },
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("study.progress.Progress", Recorder)
        args = ["run", str(path), "--storage", str(folder), "--data-dir", str(data_dir), "--no-report"]
        assert main(args) == 0
    return folder / "fill"


def test_trials_wait_pending_for_the_autoscaler(study):
    """Every trial Ray cannot place yet waits PENDING: at least trials - CPUs of them at once.

    Measured with this test's study: on the code before `max_concurrent` (commit 3f2eb2d, where
    Tune got no concurrency limit and so kept one trial pending at a time) the largest number
    PENDING at once was 1, so a cluster grew by one node per trial start; with it, 6."""
    assert max(SEEN["pending"]) >= TRIALS - CPUS


def test_states_are_checkpointed_while_trials_run_and_deleted_when_they_finish(study):
    with_state = [files for files in SEEN["checkpoints"] if STATE_FILE in files]
    last = [files for files in SEEN["checkpoints"] if STATE_FILE not in files]
    assert len(with_state) == TRIALS * (EPOCHS - 1), "every epoch but the last writes a state"
    assert last == [{RECORD_FILE, EMBEDDINGS_FILE}] * TRIALS
    assert not list(study.rglob(STATE_FILE))
    for trial in {path.parent for path in study.rglob("result.json")}:
        (checkpoint,) = trial.glob("checkpoint_*")
        assert {path.name for path in checkpoint.iterdir()} == {RECORD_FILE, EMBEDDINGS_FILE}


def test_finished_trials_keep_their_records_and_embeddings(study):
    final = final_results(load_runs(study))
    assert len(final) == TRIALS and (final["outcome"] == "completed").all()
    assert (final["epochs_run"] == EPOCHS).all()
    embeddings = saved_test_embeddings(final)
    assert sorted(embeddings) == ["ce", "gloss"]
    vectors, labels = embeddings["gloss"]
    assert len(vectors) == len(labels) > 0
