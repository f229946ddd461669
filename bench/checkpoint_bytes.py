"""Section 8: bytes of checkpoints per trial at bert-base size, through Ray Tune's real storage
path, under the old checkpointing (every epoch, Tune keeps 2, nothing deleted), the study's
default policy (every epoch but the last, keep 2, a finished trial's states deleted), the same with
keep 1, and keep 1 every 2 epochs, with the extrapolation to the `paper` preset.

    .venv/bin/python -m bench.checkpoint_bytes [--epochs 4] [--assumed-mean-epochs 40]
    .venv/bin/python -m bench.checkpoint_bytes --smoke      # a tiny model, to check the script

Each arm is one Tune trial of a stub trainable that holds the real trainer state of full
fine-tuning (random bert-base weights from `transformers.BertConfig()` defaults and a 52-class
head, Adam moments after one step, scheduler and model-selection state, laid out by
`Trainer.state_dict`) and reports each epoch through `trainables.trainable.report_epoch`, the
trainable's own checkpoint step, into a local storage folder, with the Tune settings and
callbacks `gloss run` uses (`study.checkpoints.checkpoint_settings`). Written: the sizes of the
checkpoints as Ray persisted them into storage (read there when Tune registers each) plus the
trial's other files at the end; peak: the most the trial folder held at once; left: what it holds
when the run ends."""

import argparse
import sys
import tempfile

import torch
from pyarrow import fs as pafs
from ray import tune

from bench.common import report
from common.records import Status
from study.spec import CheckpointPolicy
from trainables.checkpoint import STATE_FILE

GIB, TIB = 2**30, 2**40
# The arms as measured (bench/results/checkpoint_bytes.json), each naming the policy of its day:
# "the default" was every epoch until the default became max_share 0.05 (bench/checkpoint_time.py).
ARMS = {
    "before: every epoch, keep 2, never deleted": CheckpointPolicy(
        every_epochs=1, max_share=None, keep=2, delete_finished=False
    ),
    "after, the default: every epoch but the last, keep 2, deleted when finished": CheckpointPolicy(
        every_epochs=1, max_share=None
    ),
    "after, keep 1": CheckpointPolicy(every_epochs=1, max_share=None, keep=1),
    "after, keep 1, every 2 epochs": CheckpointPolicy(every_epochs=2, max_share=None, keep=1),
}


class StubTrainer:
    """What `report_epoch` reads of a Trainer, around a real model, optimizer and scheduler."""

    def __init__(self, smoke: bool, final_state: bool) -> None:
        from transformers import BertConfig, BertModel

        from trainables.config import TrialConfig
        from trainables.model.classifier import Classifier
        from trainables.model.encoder import TextEncoder
        from trainables.training.evaluation import HeadEvaluation
        from trainables.training.optim import build_optimizer, build_scheduler
        from trainables.training.selection import BestEpoch

        tiny = BertConfig(
            vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256
        )
        self.config = TrialConfig(dataset="r52", fidelity="full", checkpoint_final_state=final_state)
        backbone = BertModel(tiny if smoke else BertConfig(), add_pooling_layer=False)
        self.model = Classifier(TextEncoder(backbone, "cls"), 52, 0.1)
        self.optimizer = build_optimizer(self.model.parameters(), self.config)
        self.scheduler = build_scheduler(self.optimizer, self.config, steps_per_epoch=50)
        for parameter in self.model.parameters():
            parameter.grad = torch.randn_like(parameter) * 1e-3
        self.optimizer.step()  # the optimizer's moments now exist, as after any training step
        self.scheduler.step()
        self.best = BestEpoch(self.config.patience)
        self.evaluation, self.best_test_embeddings = HeadEvaluation(), None
        self.scaler = torch.amp.GradScaler("cpu", enabled=False)  # fp32: an empty state, as on the CPU
        self.epoch, self.status, self.train_time = 0, Status.RUNNING, 0.0

    @property
    def finished(self) -> bool:
        return self.status != Status.RUNNING

    def score_best_test_embeddings(self) -> dict:
        """Nothing to score: no split is evaluated here."""
        return {}

    def state_dict(self, optimizer: bool = True) -> dict:
        from trainables.training.trainer import Trainer

        return Trainer.state_dict(self, optimizer)


def stub_trial(config: dict) -> None:
    """Epochs of nothing but the trainable's real checkpoint step."""
    from trainables.checkpoint import Cadence
    from trainables.trainable import report_epoch

    trainer = StubTrainer(config["smoke"], config["checkpoint_final_state"])
    cadence = Cadence(
        config["checkpoint_every_epochs"], config["checkpoint_every_minutes"], config["checkpoint_max_share"]
    )
    for epoch in range(1, config["epochs"] + 1):
        trainer.epoch = epoch
        trainer.status = Status.COMPLETED if epoch == config["epochs"] else Status.RUNNING
        report_epoch(trainer, {"epoch": epoch, "status": trainer.status.value}, cadence)


def files(filesystem: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return [info for info in infos if info.type == pafs.FileType.File]


class Meter(tune.Callback):
    """Each persisted checkpoint's bytes (and whether it holds a trainer state), and the most the
    trial folder held at once."""

    def __init__(self) -> None:
        self.checkpoints: list[tuple[int, bool]] = []
        self.peak = 0

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint, **info) -> None:
        stored = files(checkpoint.filesystem, checkpoint.path)
        self.checkpoints.append((sum(f.size for f in stored), any(f.base_name == STATE_FILE for f in stored)))
        held = files(trial.storage.storage_filesystem, trial.storage.trial_fs_path)
        self.peak = max(self.peak, sum(f.size for f in held))


def run_arm(policy: CheckpointPolicy, epochs: int, smoke: bool, storage: str) -> dict:
    """One trial under `policy`, as `gloss run` configures Tune; its bytes in storage."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from study.checkpoints import checkpoint_settings

    meter = Meter()
    checkpoint_config, callbacks = checkpoint_settings(policy)
    tuner = tune.Tuner(
        tune.with_resources(stub_trial, {"cpu": 1}),
        param_space={"smoke": smoke, "epochs": epochs, **policy.trial_settings()},
        run_config=tune.RunConfig(
            name="arm",
            storage_path=storage,
            checkpoint_config=checkpoint_config,
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), meter, *callbacks],
            verbose=0,
        ),
    )
    (result,) = tuner.fit()
    if result.error:
        raise result.error
    trial = files(pafs.LocalFileSystem(), result.path)
    others = sum(f.size for f in trial if "/checkpoint_" not in f.path)
    states = [size for size, has_state in meter.checkpoints if has_state]
    return {
        "written": sum(size for size, _ in meter.checkpoints) + others,
        "peak": meter.peak,
        "left": sum(f.size for f in trial),
        "state_checkpoints": len(states),
        "state_checkpoint_bytes": max(states),
        "other_checkpoint_bytes": sum(size for size, has_state in meter.checkpoints if not has_state),
    }


def state_checkpoints(policy: CheckpointPolicy, epochs: int) -> int:
    """Trainer states a trial of `epochs` epochs writes under the policy's epoch cadence."""
    due = sum(epoch % policy.every_epochs == 0 for epoch in range(1, epochs))
    return due + (not policy.delete_finished)


def paper_trials() -> int:
    """Trials of the `paper` preset: its search phase plus its final phase."""
    from study.cli import load_spec
    from study.plan import phases

    return sum(phase.trials for phase in phases(load_spec("paper", [])))


def extrapolate(policy: CheckpointPolicy, measured: dict, mean_epochs: int, trials: int) -> dict:
    """Checkpoint bytes of the paper protocol (records excluded): every trial assumed to run
    `mean_epochs` epochs, each state as large as measured."""
    states = state_checkpoints(policy, mean_epochs)
    state = measured["state_checkpoint_bytes"]
    left = measured["other_checkpoint_bytes"] if policy.delete_finished else min(policy.keep, states) * state
    return {
        "paper_written_TiB": trials * (states * state + measured["other_checkpoint_bytes"]) / TIB,
        "paper_left_TiB": trials * left / TIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--assumed-mean-epochs", type=int, default=40)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    epochs = 3 if args.smoke else args.epochs  # 3: the every-2-epochs arm writes one state

    from study.ray_session import connect, prepare_environment

    prepare_environment(None)
    connect(None, num_cpus=1)
    trials = paper_trials()
    rows = []
    for name, policy in ARMS.items():
        with tempfile.TemporaryDirectory() as storage:
            measured = run_arm(policy, epochs, args.smoke, storage)
        rows.append(
            {
                "policy": name,
                "epochs": epochs,
                "state_checkpoints": measured["state_checkpoints"],
                "state_GiB": measured["state_checkpoint_bytes"] / GIB,
                "written_GiB": measured["written"] / GIB,
                "peak_GiB": measured["peak"] / GIB,
                "left_bytes": measured["left"],
                **extrapolate(policy, measured, args.assumed_mean_epochs, trials),
            }
        )
    report(
        "checkpoint_bytes_smoke" if args.smoke else "checkpoint_bytes",
        rows,
        {
            "command": " ".join(["python -m bench.checkpoint_bytes", *sys.argv[1:]]),
            "paper_trials": trials,
            "assumed_mean_epochs_per_trial": args.assumed_mean_epochs,
        },
    )


if __name__ == "__main__":
    main()
