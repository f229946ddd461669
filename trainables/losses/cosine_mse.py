"""The G-Loss authors' "Cos-Sim" baseline: MSE between pair cosine and same-class indicator."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainables.losses.base import LAMBDA_SPACE, AuxLoss, AuxParams, LossContext, LossResult, Needs, zero_loss
from trainables.losses.pairs import pair_masks


@dataclass(frozen=True)
class CosineMSEParams(AuxParams):
    """No parameters beyond the CE weight `lam`."""


SPACE = {"lam": LAMBDA_SPACE}
"""The default search space (see LossEntry.space)."""


class CosineMSELoss(AuxLoss):
    """Mean over pairs i<j of (cos(h_i, h_j) - 1[y_i = y_j])^2."""

    needs = Needs(class_repeats=True)

    def __init__(self, params: CosineMSEParams, context: LossContext) -> None:
        super().__init__()

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossResult:
        if len(labels) < 2:
            return zero_loss(embeddings)
        unit = F.normalize(embeddings, dim=1)
        cosine = unit @ unit.T
        positive, _ = pair_masks(labels)
        upper = torch.triu(torch.ones_like(positive), diagonal=1)
        value = (cosine - positive.to(cosine.dtype))[upper].square().mean()
        return LossResult(value, {"positive_pairs": float(positive[upper].sum())})
