"""G-Loss (Sharma et al., 2026): hide part of the batch's labels, propagate the visible ones over
the embedding similarity graph, and penalise wrong propagated labels on the hidden nodes."""

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from common.errors import ConfigError
from trainables.losses.base import (
    LAMBDA_SPACE,
    AuxLoss,
    AuxParams,
    LossContext,
    LossResult,
    Needs,
    balanced_class_weights,
    zero_loss,
)
from trainables.losses.propagation import (
    graph_log_weights,
    hidden_class_mass,
    label_propagation,
    reached,
)
from trainables.losses.sigma import SIGMA_HEURISTICS, sigma_heuristic

__all__ = ["SPACE", "GLoss", "GLossParams", "label_propagation"]

PROBABILITY_FLOOR = 1e-8


@dataclass(frozen=True)
class GLossParams(AuxParams):
    """G-Loss settings (the paper's sigma, gamma, lambda; k and propagation are this project's
    extensions). `gamma` is the fraction of labels KEPT."""

    lam: float = 0.7
    sigma: float | Literal["sqrt", "dicm"] = 0.5
    gamma: float = 0.7
    k: int | None = None
    propagation: Literal["harmonic", "spreading"] = "harmonic"
    alpha: float = 0.9
    variant: Literal["standard", "reference"] = "standard"
    solve_dtype: Literal["float32", "float64"] = "float64"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.sigma, float | int) and not self.sigma > 0:
            raise ConfigError(
                f"loss_params.sigma: {self.sigma} must be positive, or one of "
                f"{', '.join(SIGMA_HEURISTICS)} to compute it from the data."
            )
        if not 0.0 < self.gamma < 1.0:
            raise ConfigError(
                f"loss_params.gamma: {self.gamma} is outside (0, 1); it is the fraction of batch "
                "labels kept visible, e.g. 0.7."
            )
        if self.k is not None and self.k < 1:
            raise ConfigError(f"loss_params.k: {self.k} must be at least 1, or null for a full graph.")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"loss_params.alpha: {self.alpha} is outside (0, 1), e.g. 0.9.")
        if self.variant == "reference" and self.propagation != "harmonic":
            raise ConfigError(
                "loss_params.propagation: the reference variant reproduces the authors' harmonic "
                "propagation; set propagation: harmonic."
            )

    def check_batch_size(self, batch_size: int) -> None:
        """k neighbours need at least k + 1 nodes in a batch."""
        if self.k is not None and self.k >= batch_size:
            raise ConfigError(
                f"loss_params.k: {self.k} is not below the batch size {batch_size}; choose a "
                "smaller k or null for a fully connected graph."
            )


SPACE = {
    "lam": LAMBDA_SPACE,
    "sigma": {"log_uniform": [0.05, 2.0]},
    "gamma": {"uniform": [0.5, 0.9]},
    "k": {"choice": [None, 4, 8, 16, 32, 64]},
    "propagation": {"choice": ["harmonic", "spreading"]},
    "alpha": {"uniform": [0.5, 0.99], "when": {"propagation": "spreading"}},
}
"""The default search space (see LossEntry.space): alpha only where propagation is spreading."""


class GLoss(AuxLoss):
    """L_G: mean negative log propagated probability of the true class over hidden nodes.

    Hidden nodes whose class has no labeled node in the batch, or that no labeled node
    reaches, cannot be predicted by propagation: they are left out and counted in the stats.
    The `reference` variant reproduces the authors' code (their loss form, FIDELITY.md) for ablations.
    """

    needs = Needs(class_repeats=True)

    def __init__(self, params: GLossParams, context: LossContext) -> None:
        super().__init__()
        self.params = params
        self.num_classes = context.num_classes
        self.sigma = (
            sigma_heuristic(params.sigma, *context.pretrained_embeddings())
            if isinstance(params.sigma, str)
            else float(params.sigma)
        )
        self.alpha = params.alpha if params.propagation == "spreading" else None
        self.solve_dtype = getattr(torch, params.solve_dtype)
        self.register_buffer("class_weights", balanced_class_weights(context.class_counts), persistent=False)

    def labeled_mask(self, size: int, device: torch.device) -> torch.Tensor:
        """A fresh random choice of ceil(gamma * B) visible nodes, leaving at least one hidden."""
        kept = min(max(math.ceil(self.params.gamma * size), 1), size - 1)
        mask = torch.zeros(size, dtype=torch.bool)
        mask[torch.randperm(size)[:kept]] = True
        return mask.to(device)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossResult:
        if len(labels) < 2:
            return zero_loss(embeddings, excluded=0.0)
        labeled = self.labeled_mask(len(labels), labels.device)
        log_w = graph_log_weights(embeddings.to(self.solve_dtype), self.sigma, self.params.k)
        one_hot = F.one_hot(labels, self.num_classes).to(self.solve_dtype)
        reference = self.params.variant == "reference"
        mass = hidden_class_mass(log_w, one_hot, labeled, alpha=self.alpha, reference=reference)
        hidden_labels = labels[~labeled]
        if reference:
            return self._reference_loss(mass, hidden_labels, embeddings.dtype)
        return self._hidden_nll(mass, hidden_labels, labels[labeled], embeddings)

    def _hidden_nll(
        self,
        mass: torch.Tensor,
        hidden_labels: torch.Tensor,
        visible_labels: torch.Tensor,
        embeddings: torch.Tensor,
    ) -> LossResult:
        visible = torch.zeros(self.num_classes, dtype=torch.bool, device=mass.device)
        visible[visible_labels] = True
        eligible = visible[hidden_labels] & reached(mass)
        stats = {"sigma": self.sigma, "excluded": float(1.0 - eligible.float().mean())}
        if not eligible.any():
            return zero_loss(embeddings, **stats)
        mass, targets = mass[eligible], hidden_labels[eligible]
        probability = mass.gather(1, targets[:, None]).squeeze(1) / mass.sum(dim=1)
        value = -probability.clamp_min(PROBABILITY_FLOOR).log().mean()
        return LossResult(value.to(embeddings.dtype), stats)

    def _reference_loss(
        self, mass: torch.Tensor, hidden_labels: torch.Tensor, dtype: torch.dtype
    ) -> LossResult:
        """The authors' form: propagated probabilities fed to weighted softmax cross-entropy as
        logits, divided again by |U| in integrated mode."""
        value = F.cross_entropy(mass, hidden_labels, weight=self.class_weights.to(mass.dtype))
        if self.params.lam < 1.0:
            value = value / len(hidden_labels)
        return LossResult(value.to(dtype), {"sigma": self.sigma, "excluded": 0.0})
