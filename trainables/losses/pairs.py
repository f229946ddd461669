"""Pairwise helpers shared by the pair, triplet and contrastive losses."""

import torch


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean [B, B] masks of positive pairs (same label, i != j) and negative pairs."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """[B, B] squared Euclidean distances, clamped at zero against rounding."""
    norms = x.square().sum(dim=1)
    return (norms[:, None] + norms[None, :] - 2.0 * x @ x.T).clamp_min(0.0)


def euclidean_distances(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """[B, B] Euclidean distances whose gradient stays finite (zero) at zero distance."""
    squared = squared_distances(x)
    return squared.clamp_min(eps).sqrt() * (squared > eps)
