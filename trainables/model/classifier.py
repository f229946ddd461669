"""The trained model: a body that yields pooled embeddings and a linear head for the CE term."""

import torch
from torch import nn


class FeatureProjection(nn.Module):
    """Frozen fidelity's trainable body: a residual MLP over cached embeddings.

    The output layer starts at zero, so training starts from the pre-trained embedding space.
    """

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        features = batch["features"]
        return features + self.mlp(features)


class Classifier(nn.Module):
    """body(batch) -> embeddings [B, D]; head(embeddings) -> logits [B, C]."""

    def __init__(self, body: nn.Module, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.body = body
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(body.dim, num_classes)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.body(batch)
        return embeddings, self.head(self.dropout(embeddings))
