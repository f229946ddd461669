"""Trial faults under Ray: a trial killed with SIGKILL mid-epoch, or one that raises, restarts from
its last checkpoint and ends with the metrics of an uninterrupted run, its records holding every
epoch it reported; checkpointing every epoch, at most one epoch is redone. A diverging
configuration ends its trial as `diverged` and the study goes on."""

import json
from pathlib import Path

import pytest
import yaml
from ray import tune

from analysis import final_results, load_runs
from common.records import SEARCH_METRIC, SEARCH_MODE
from study.cli import main
from study.record_writers import record_writers
from study.searchers import FixedTrials
from tests.processes import uninterrupted_run
from trainables.config import TrialConfig

CONFIG = {
    "dataset": "r8",
    "loss": "gloss",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "train_size": 120,
    "eval_size": 60,
    "max_length": 32,
    "epochs": 5,
    "patience": None,
    "seed": 3,
}
FAULT_EPOCH = 3


def faulty(kind: str, folder: str, fault_epoch: int = FAULT_EPOCH):
    """The real trainable, made to fail once at step 2 of `fault_epoch` and to log every epoch start.
    Its first checkpoint is assumed free (WRITE_S_PER_GIB 0), so the share policy checkpoints epoch
    1 on any machine and decides every later epoch from the costs it measured."""

    def trainable(config):
        import os
        import signal

        from trainables import checkpoint
        from trainables import trainable as real
        from trainables.training import trainer as module

        log, crashed = Path(folder) / "epochs.log", Path(folder) / "crashed"
        train_epoch, optimise = module.Trainer._train_epoch, module.Trainer._optimise

        def logged(self):
            with open(log, "a") as handle:
                handle.write(f"{self.epoch}\n")
            return train_epoch(self)

        def failing(self, loss, step):
            if self.epoch == fault_epoch and step == 2 and not crashed.exists():
                crashed.touch()
                if kind == "sigkill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("injected fault")
            return optimise(self, loss, step)

        module.Trainer._train_epoch, module.Trainer._optimise = logged, failing
        checkpoint.WRITE_S_PER_GIB = 0.0
        real.train_trial(config)

    return trainable


@pytest.mark.parametrize(
    ("kind", "every", "fault_epoch", "expected"),
    [
        ("sigkill", 1, FAULT_EPOCH, [1, 2, 3, 3, 4, 5]),
        ("raise", 1, FAULT_EPOCH, [1, 2, 3, 3, 4, 5]),
        ("sigkill", 3, 5, [1, 2, 3, 4, 5, 4, 5]),
        pytest.param("sigkill", None, FAULT_EPOCH, None, marks=pytest.mark.faults),  # make test-cluster
    ],
    ids=["sigkill", "raise", "sigkill-every-3-epochs", "sigkill-share-policy"],
)
def test_crashed_trial_resumes_from_its_checkpoint(
    kind, every, fault_epoch, expected, tmp_path, data_dir, local_ray
):
    """Checkpointing every epoch, only the interrupted epoch runs twice; every third epoch, a trial
    killed in epoch 5 resumes from epoch 3 and also redoes epoch 4. Under the share policy (at
    most 5% of the time in checkpoints, its first assumed free) it resumes right after the last
    epoch the policy checkpointed, having lost nothing before it."""
    policy = (
        {"checkpoint_every_epochs": every, "checkpoint_max_share": None}
        if every
        else {"train_size": 4000, "checkpoint_every_epochs": None, "checkpoint_max_share": 0.05}
    )
    trial = {**CONFIG, **policy}
    config = {**trial, "data_dir": str(data_dir)}
    config = TrialConfig.from_dict(config).to_dict()
    tuner = tune.Tuner(
        tune.with_resources(faulty(kind, str(tmp_path), fault_epoch), {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=FixedTrials([config]), num_samples=1, metric=SEARCH_METRIC, mode=SEARCH_MODE
        ),
        run_config=tune.RunConfig(
            name="faults",
            storage_path=str(tmp_path / "results"),
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=record_writers(),
        ),
    )
    (result,) = tuner.fit()
    assert result.error is None and (tmp_path / "crashed").exists()
    starts = [int(line) for line in (tmp_path / "epochs.log").read_text().split()]
    rows = [json.loads(line) for line in (Path(result.path) / "result.json").read_text().splitlines()]
    if expected is None:  # the share policy: which epochs it checkpoints depends on measured costs
        before_kill = rows[: FAULT_EPOCH - 1]  # epochs 1 and 2, reported before the kill in epoch 3
        checkpointed = [row["epoch"] for row in before_kill if row.get("checkpoint_dir_name")]
        assert checkpointed[:1] == [1], f"the first checkpoint, assumed free, is epoch 1's: {rows}"
        resumed_at = starts[FAULT_EPOCH]  # the first epoch started after the kill
        assert resumed_at == max(checkpointed) + 1, f"resumed after its last checkpoint: {starts}"
        expected = list(range(1, FAULT_EPOCH + 1)) + list(range(resumed_at, CONFIG["epochs"] + 1))
    assert starts == expected
    reported = starts.copy()
    reported.remove(fault_epoch)  # its first start: the kill or fault came before it reported
    assert [row["epoch"] for row in rows] == reported, "the records keep every epoch reported"
    reference = uninterrupted_run(trial, data_dir)
    for key in ("best_epoch", "best_score", "selected_test_accuracy", "selected_test_macro_f1", "train_loss"):
        assert result.metrics[key] == pytest.approx(reference[key], rel=1e-9, abs=1e-12), key


def test_diverging_trial_is_recorded_and_the_study_goes_on(tmp_path, data_dir, local_ray, capsys):
    spec = {
        "name": "diverge",
        "kind": "ablation",
        "model": "tiny-bert",
        "datasets": ["r8"],
        "losses": ["gloss"],
        "training": {
            k: v for k, v in CONFIG.items() if k in ("train_size", "eval_size", "max_length", "epochs")
        },
        "ablation": {"loss": "gloss", "factors": {"lr": [1.0e-3, {"lr": 1.0e8, "max_grad_norm": None}]}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["run", str(path), "--storage", str(tmp_path), "--data-dir", str(data_dir)]) == 0
    assert "1 diverged" in capsys.readouterr().out
    final = final_results(load_runs(tmp_path / "diverge"))
    assert sorted(final["outcome"]) == ["completed", "diverged"]
    diverged = final[final["outcome"] == "diverged"].iloc[0]
    assert "non-finite" in diverged["diverged_reason"]
    assert (tmp_path / "diverge" / "report" / "report.html").exists()
