"""Margin contrastive loss (Hadsell, Chopra and LeCun, 2006) on L2-normalised embeddings."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.errors import ConfigError
from trainables.losses.base import LAMBDA_SPACE, AuxLoss, AuxParams, LossContext, LossResult, Needs, zero_loss
from trainables.losses.pairs import euclidean_distances, pair_masks


@dataclass(frozen=True)
class ContrastiveParams(AuxParams):
    """`margin`: negatives closer than this (unit-sphere distance, in (0, 2]) are pushed apart."""

    margin: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.margin <= 2.0:
            raise ConfigError(
                f"loss_params.margin: {self.margin} is outside (0, 2]; distances between "
                "unit vectors never exceed 2."
            )


SPACE = {"lam": LAMBDA_SPACE, "margin": {"uniform": [0.2, 1.5]}}
"""The default search space (see LossEntry.space)."""


class ContrastiveLoss(AuxLoss):
    """Mean over all pairs i<j of y d^2 + (1 - y) max(0, margin - d)^2, halved (Hadsell et al.)."""

    needs = Needs(class_repeats=True)

    def __init__(self, params: ContrastiveParams, context: LossContext) -> None:
        super().__init__()
        self.margin = params.margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossResult:
        if len(labels) < 2:
            return zero_loss(embeddings)
        positive, negative = pair_masks(labels)
        distances = euclidean_distances(F.normalize(embeddings, dim=1))
        per_pair = torch.where(
            positive, distances.square(), (self.margin - distances).clamp_min(0.0).square()
        )
        upper = torch.triu(positive | negative, diagonal=1)
        value = 0.5 * per_pair[upper].mean()
        return LossResult(value, {"positive_pairs": float(torch.triu(positive, 1).sum())})
