"""Kernel widths computed once from pre-trained embeddings of the training set (G-Loss paper)."""

import torch
import torch.nn.functional as F

from common.errors import ConfigError

SIGMA_HEURISTICS = ("sqrt", "dicm")
SAMPLE_SIZE = 4000
CHUNK = 1024


def sigma_heuristic(name: str, embeddings: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> float:
    """`sqrt`: sqrt(median pairwise distance / 3); `dicm`: min distance across classes / 3.

    Distances are between L2-normalised embeddings. The median uses a seeded sample of
    SAMPLE_SIZE points; the cross-class minimum is exact and ignores duplicate documents.
    """
    unit = F.normalize(embeddings.double(), dim=1)
    if name == "sqrt":
        return float(median_distance(unit, seed) / 3.0) ** 0.5
    if name == "dicm":
        return float(min_cross_class_distance(unit, labels)) / 3.0
    raise ConfigError(f"loss_params.sigma: unknown heuristic '{name}'; use {' or '.join(SIGMA_HEURISTICS)}.")


def median_distance(unit: torch.Tensor, seed: int) -> float:
    """Median Euclidean distance over distinct pairs of a seeded sample."""
    if len(unit) > SAMPLE_SIZE:
        generator = torch.Generator().manual_seed(seed)
        unit = unit[torch.randperm(len(unit), generator=generator)[:SAMPLE_SIZE]]
    distances = torch.cdist(unit, unit)
    upper = torch.triu(torch.ones_like(distances, dtype=torch.bool), diagonal=1)
    return float(distances[upper].median())


def min_cross_class_distance(unit: torch.Tensor, labels: torch.Tensor) -> float:
    """Smallest positive distance between two points of different classes, in chunks."""
    best = float("inf")
    for start in range(0, len(unit), CHUNK):
        block = torch.cdist(unit[start : start + CHUNK], unit)
        other = labels[start : start + CHUNK, None] != labels[None, :]
        candidates = block[other & (block > 1e-6)]
        if len(candidates):
            best = min(best, float(candidates.min()))
    if best == float("inf"):
        raise ConfigError(
            "loss_params.sigma: 'dicm' needs two classes with distinct embeddings; give a number."
        )
    return best
