"""Batch-all triplet loss with Euclidean distance, averaged over triplets that violate the margin."""

from dataclasses import dataclass

import torch

from common.errors import ConfigError
from trainables.losses.base import LAMBDA_SPACE, AuxLoss, AuxParams, LossContext, LossResult, Needs, zero_loss
from trainables.losses.pairs import euclidean_distances, pair_masks


@dataclass(frozen=True)
class TripletParams(AuxParams):
    """`margin` on raw (unnormalised) Euclidean distances; the G-Loss paper used 5."""

    margin: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.margin <= 0.0:
            raise ConfigError(f"loss_params.margin: {self.margin} must be positive.")


SPACE = {"lam": LAMBDA_SPACE, "margin": {"log_uniform": [0.1, 5.0]}}
"""The default search space (see LossEntry.space)."""


class TripletLoss(AuxLoss):
    """Mean of relu(d(a, p) - d(a, n) + margin) over every valid triplet with a positive value."""

    needs = Needs(class_repeats=True)

    def __init__(self, params: TripletParams, context: LossContext) -> None:
        super().__init__()
        self.margin = params.margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossResult:
        positive, negative = pair_masks(labels)
        valid = positive[:, :, None] & negative[:, None, :]
        if not valid.any():
            return zero_loss(embeddings, triplets=0.0)
        distances = euclidean_distances(embeddings)
        violation = (distances[:, :, None] - distances[:, None, :] + self.margin).clamp_min(0.0)
        active = valid & (violation > 0)
        if not active.any():
            return LossResult(embeddings.sum() * 0.0, {"triplets": float(valid.sum()), "active": 0.0})
        value = violation[active].mean()
        stats = {"triplets": float(valid.sum()), "active": float(active.sum() / valid.sum())}
        return LossResult(value, stats)
