"""The Ray Tune function trainable: typed config in, one report and checkpoint per epoch out.

Thin on purpose: everything it runs is the framework-free Trainer. Heavy imports happen inside
the function, so importing this module (as the driver does to hand it to Tune) costs nothing."""

import gc
import socket
import tempfile
from typing import Any

IDENTITY = ("dataset", "seed", "model", "fidelity", "study", "phase")


def train_trial(config: dict[str, Any]) -> None:
    """Run one trial, resuming from Tune's checkpoint when Ray restarts it."""
    import torch
    from ray import tune

    from trainables.checkpoint import load_state, save_state
    from trainables.config import TrialConfig
    from trainables.training.trainer import Trainer

    trial = TrialConfig.from_dict(config)
    torch.set_num_threads(_cpus_of_this_trial())
    trainer = Trainer(trial)
    if (checkpoint := tune.get_checkpoint()) is not None:
        with checkpoint.as_directory() as folder:
            trainer.load_state_dict(load_state(folder))
    identity = {name: getattr(trial, name) for name in IDENTITY}
    identity |= {"loss": trial.method, "loss_function": trial.loss}  # the study's row; the registry loss
    identity |= {
        "node": socket.gethostname(),
        "node_id": _node_id(),
        "loss_lambda": trial.loss_params.lam,
        **trial.tags,
    }
    try:
        for record in trainer.run():
            with tempfile.TemporaryDirectory() as folder:
                save_state(trainer.state_dict(), folder)
                _save_embeddings(trainer, folder)
                tune.report({**identity, **record}, checkpoint=tune.Checkpoint.from_directory(folder))
    finally:
        del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _node_id() -> str:
    """Ray's id of the node this attempt runs on (a restarted trial may move to another)."""
    import ray

    return ray.get_runtime_context().get_node_id()


def _cpus_of_this_trial() -> int:
    from ray import tune

    resources = tune.get_context().get_trial_resources()
    return max(1, int(resources.required_resources.get("CPU", 1)))


def _save_embeddings(trainer, folder: str) -> None:
    """With save_embeddings, the best epoch's test embeddings travel with the checkpoint."""
    import numpy as np

    if trainer.finished and trainer.best_test_embeddings is not None:
        np.savez_compressed(
            f"{folder}/test_embeddings.npz",
            embeddings=trainer.best_test_embeddings.float().numpy(),
            labels=trainer.data.test.labels,
        )
