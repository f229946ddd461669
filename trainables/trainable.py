"""The Ray Tune function trainable: typed config in, one report per epoch out, with a checkpoint
as often as the trial's checkpoint settings ask.

Thin on purpose: everything it runs is the framework-free Trainer. Heavy imports happen inside
the function, so importing this module (as the driver does to hand it to Tune) costs nothing."""

import gc
import socket
import tempfile
from typing import TYPE_CHECKING, Any

from common.records import IDENTITY, RECORD_VERSION

if TYPE_CHECKING:
    from trainables.checkpoint import Cadence
    from trainables.training.trainer import Trainer


def train_trial(config: dict[str, Any]) -> None:
    """Run one trial, resuming from Tune's checkpoint when Ray restarts it."""
    import torch
    from ray import tune

    from trainables.checkpoint import Cadence, estimated_cost, load_state
    from trainables.config import TrialConfig
    from trainables.training.device import place
    from trainables.training.trainer import Trainer

    trial = TrialConfig.from_dict(config)
    placement = place(trial.device, trial.precision, _gpus_of_this_trial(), _node_name())
    state = None
    if (checkpoint := tune.get_checkpoint()) is not None:
        with checkpoint.as_directory() as folder:
            state = load_state(folder)
        if state is None:
            return  # restored after the trial ended (its state was not kept): nothing left to do
    torch.set_num_threads(_cpus_of_this_trial())
    trainer = Trainer(trial, placement=placement)
    if state is not None:
        trainer.load_state_dict(state)
    # The record contract's identity: the study's row name and the registry loss, then the rest.
    identity = {"loss": trial.method, "loss_function": trial.loss, "record_version": RECORD_VERSION}
    identity |= {name: getattr(trial, name) for name in IDENTITY if name not in identity}
    identity |= {
        "node": socket.gethostname(),
        "node_id": _node_id(),
        "loss_lambda": trial.loss_params.lam,
        **trial.tags,
    }
    cadence = Cadence(
        trial.checkpoint_every_epochs,
        trial.checkpoint_every_minutes,
        trial.checkpoint_max_share,
        first_cost=estimated_cost(trainer.state_bytes(trial.checkpoint_optimizer)),
    )
    try:
        for record in trainer.run():
            report_epoch(trainer, {**identity, **record}, cadence)
    finally:
        del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def report_epoch(trainer: "Trainer", record: dict[str, Any], cadence: "Cadence") -> None:
    """Report an epoch to Tune, with a checkpoint of the trainer state when the cadence says so.
    The last epoch always carries a checkpoint: the state when `checkpoint_final_state`, else
    none (so a trial restored after it ended trains no further), with the saved test embeddings.
    Every checkpoint holds its epoch's record, which carries the best epoch's test embedding
    metrics, scored before the state is written."""
    import time

    from ray import tune

    from trainables.checkpoint import save_record, save_state

    final = trainer.finished
    with_state = trainer.config.checkpoint_final_state if final else cadence.due(trainer.epoch)
    if not (with_state or final):
        tune.report(record)
        return
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        if with_state:
            record |= trainer.score_best_test_embeddings()
            save_state(trainer.state_dict(optimizer=trainer.config.checkpoint_optimizer), folder)
        save_record(record, folder)
        _save_embeddings(trainer, folder)
        tune.report(record, checkpoint=tune.Checkpoint.from_directory(folder))
    cadence.saved(time.monotonic() - start)


def _node_id() -> str:
    """Ray's id of the node this attempt runs on (a restarted trial may move to another)."""
    import ray

    return ray.get_runtime_context().get_node_id()


def _node_name() -> str:
    """This node as errors name it: hostname and Ray's IP for it."""
    import ray

    return f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"


def _gpus_of_this_trial() -> float:
    """The GPUs Tune reserved for this trial (resources.gpu): more than 0 means train on CUDA."""
    from ray import tune

    return tune.get_context().get_trial_resources().required_resources.get("GPU", 0)


def _cpus_of_this_trial() -> int:
    from ray import tune

    resources = tune.get_context().get_trial_resources()
    return max(1, int(resources.required_resources.get("CPU", 1)))


def _save_embeddings(trainer, folder: str) -> None:
    """With save_embeddings, the best epoch's test embeddings travel with the checkpoint."""
    import numpy as np

    from trainables.checkpoint import EMBEDDINGS_FILE

    if trainer.finished and trainer.best_test_embeddings is not None:
        np.savez_compressed(
            f"{folder}/{EMBEDDINGS_FILE}",
            embeddings=trainer.best_test_embeddings.float().numpy(),
            labels=trainer.data.test.labels,
        )
