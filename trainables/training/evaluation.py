"""How a trial's test metrics are obtained, chosen once per trial from its mode.

Integrated (lam < 1): the CE head classifies; its test metrics at the best validation epoch are
the trial's. Standalone (lam = 1): the encoder learns from the auxiliary loss alone and nothing
trains the head, so the best validation epoch's weights are kept, and when training ends a
linear probe on their embeddings gives the trial's test metrics (as the paper does)."""

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trainables.config import TrialConfig
from trainables.training.metrics import head_metrics
from trainables.training.probe import linear_probe
from trainables.training.seeding import seed_hash

# Embeddings of a named split ("train", "val", "test") under the model's current weights.
EmbedSplit = Callable[[str], tuple[torch.Tensor, np.ndarray]]


class HeadEvaluation:
    """Integrated mode: the head's accuracy and macro-F1 every epoch, on validation and test."""

    selected_prefix = "test_"

    def split_metrics(self, split: str, labels: np.ndarray, logits: torch.Tensor) -> dict[str, float]:
        return head_metrics(split, labels, logits)

    def on_new_best(self, model: torch.nn.Module) -> None:
        """Nothing to keep: the best epoch's record holds the head's test metrics."""

    def finish(self, model: torch.nn.Module, embed: EmbedSplit) -> dict[str, float]:
        return {}

    def selected(self, best_record: dict[str, Any]) -> dict[str, Any]:
        """Where the test metrics chosen by validation come from."""
        return best_record

    def state_dict(self) -> dict[str, Any]:
        return {"best_weights": None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """No state of its own."""


class ProbeEvaluation:
    """Standalone mode: no head metrics; the best epoch's weights, then a probe at the end."""

    selected_prefix = "probe_test_"

    def __init__(self, config: TrialConfig) -> None:
        self.probe, self.seed = config.probe, seed_hash(config.seed, "probe")
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.metrics: dict[str, float] = {}

    def split_metrics(self, split: str, labels: np.ndarray, logits: torch.Tensor) -> dict[str, float]:
        return {}

    def on_new_best(self, model: torch.nn.Module) -> None:
        self.best_weights = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})

    def finish(self, model: torch.nn.Module, embed: EmbedSplit) -> dict[str, float]:
        """The probe's metrics on validation and test, fitted on the best weights' train embeddings."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)
        evaluations = {split: embed(split) for split in ("val", "test")}
        self.metrics = linear_probe(embed("train"), evaluations, self.probe, self.seed)
        return self.metrics

    def selected(self, best_record: dict[str, Any]) -> dict[str, Any]:
        return self.metrics

    def state_dict(self) -> dict[str, Any]:
        return {"best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_weights = state["best_weights"]


def evaluation_for(config: TrialConfig) -> HeadEvaluation | ProbeEvaluation:
    """The trial's evaluation, from its mode."""
    return ProbeEvaluation(config) if config.standalone else HeadEvaluation()
