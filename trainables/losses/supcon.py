"""Supervised contrastive loss (Khosla et al., 2020, the L_out form) on L2-normalised embeddings."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.errors import ConfigError
from trainables.losses.base import LAMBDA_SPACE, AuxLoss, AuxParams, LossContext, LossResult, Needs, zero_loss
from trainables.losses.pairs import pair_masks


@dataclass(frozen=True)
class SupConParams(AuxParams):
    """`temperature` tau; the loss is scaled by tau / `base_temperature` as in Khosla et al."""

    lam: float = 0.9
    temperature: float = 0.1
    base_temperature: float = 0.07

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("temperature", "base_temperature"):
            if getattr(self, name) <= 0.0:
                raise ConfigError(f"loss_params.{name}: {getattr(self, name)} must be positive.")


SPACE = {"lam": LAMBDA_SPACE, "temperature": {"log_uniform": [0.05, 1.0]}}
"""The default search space (see LossEntry.space)."""


class SupConLoss(AuxLoss):
    """Mean over anchors with a positive of -mean_p log softmax_{a != i}(z_i . z_a / tau)[p]."""

    needs = Needs(class_repeats=True)

    def __init__(self, params: SupConParams, context: LossContext) -> None:
        super().__init__()
        self.temperature = params.temperature
        self.scale = params.temperature / params.base_temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossResult:
        positive, _ = pair_masks(labels)
        anchors = positive.any(dim=1)
        if not anchors.any():
            return zero_loss(embeddings, anchors=0.0)
        unit = F.normalize(embeddings, dim=1)
        logits = (unit @ unit.T) / self.temperature
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        log_prob = logits - torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
        mean_positive = (log_prob * positive).sum(dim=1) / positive.sum(dim=1).clamp_min(1)
        value = -self.scale * mean_positive[anchors].mean()
        return LossResult(value, {"anchors": float(anchors.float().mean())})
