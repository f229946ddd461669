"""The training objective: L = lam * L_aux + (1 - lam) * CE; lam = 1 trains the encoder by the
auxiliary loss alone (standalone mode)."""

import torch
import torch.nn.functional as F
from torch import nn

from trainables.losses.base import AuxLoss


class Objective(nn.Module):
    """Combine an auxiliary loss (or none) with cross-entropy on the head's logits."""

    def __init__(self, aux: AuxLoss | None, lam: float, class_weights: torch.Tensor | None = None):
        super().__init__()
        self.aux = aux
        self.lam = lam if aux is not None else 0.0
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(
        self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The total loss and its terms (detached floats) for logging."""
        terms: dict[str, float] = {}
        total = logits.new_zeros(())
        if self.lam < 1.0:
            ce = F.cross_entropy(logits.float(), labels, weight=self.class_weights)
            total = total + (1.0 - self.lam) * ce
            terms["ce"] = float(ce.detach())
        if self.aux is not None and self.lam > 0.0:
            result = self.aux(embeddings.float(), labels)
            total = total + self.lam * result.value
            terms["aux"] = float(result.value.detach())
            terms.update({f"aux_{key}": value for key, value in result.stats.items()})
        return total, terms
