"""Evaluation metrics: the head's accuracy and macro-F1, and head-free embedding metrics
(leave-one-out kNN macro-F1 and macro silhouette) so standalone losses have curves too."""

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score

CHUNK = 2048


def head_metrics(prefix: str, labels: np.ndarray, logits: torch.Tensor) -> dict[str, float]:
    """Accuracy and macro-F1 (over classes present in labels or predictions) of the head."""
    predictions = logits.argmax(dim=1).cpu().numpy()
    return {
        f"{prefix}_accuracy": float(accuracy_score(labels, predictions)),
        f"{prefix}_macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
    }


def knn_predictions(embeddings: torch.Tensor, labels: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Leave-one-out k-nearest-neighbour votes by cosine similarity; ties go to the nearest."""
    unit = F.normalize(embeddings.float(), dim=1)
    k = min(k, len(unit) - 1)
    num_classes = int(labels.max()) + 1
    predictions = []
    for start in range(0, len(unit), CHUNK):
        similarity = unit[start : start + CHUNK] @ unit.T
        rows = torch.arange(len(similarity))
        similarity[rows, rows + start] = float("-inf")
        neighbours = similarity.topk(k, dim=1).indices
        votes = F.one_hot(labels[neighbours], num_classes).sum(dim=1).float()
        votes += 1e-3 * F.one_hot(labels[neighbours[:, 0]], num_classes)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def macro_silhouette(
    embeddings: torch.Tensor, labels: torch.Tensor, metric: Literal["euclidean", "cosine"] = "euclidean"
) -> float:
    """Mean over classes of the mean silhouette of the class's members, as the paper computes it:
    scikit-learn's silhouette on L2-normalised embeddings, Euclidean by default, with the members
    of singleton classes removed first. NaN when fewer than two classes remain.

    Both distances come from dot products of unit vectors: cosine 1 - z_i.z_j summed per class
    in O(n d C) (n_c - z_i . sum of c's z), Euclidean sqrt(2 - 2 z_i.z_j) in row chunks (O(n^2 d)
    time, O(CHUNK n) memory)."""
    classes, counts = torch.unique(labels, return_counts=True)
    kept = torch.isin(labels, classes[counts > 1])
    classes, labels = torch.unique(labels[kept], return_inverse=True)
    if len(classes) < 2:
        return math.nan
    unit = F.normalize(embeddings[kept].double(), dim=1)
    one_hot = F.one_hot(labels, len(classes)).double()
    sizes = one_hot.sum(dim=0)
    if metric == "cosine":
        distance_sums = (sizes[None, :] - unit @ (one_hot.T @ unit).T).clamp_min(0.0)
    else:
        distance_sums = euclidean_class_sums(unit, one_hot)
    a = distance_sums.gather(1, labels[:, None]).squeeze(1) / (sizes[labels] - 1)
    b = (distance_sums / sizes).scatter(1, labels[:, None], float("inf")).min(dim=1).values
    scores = torch.nan_to_num((b - a) / torch.maximum(a, b))
    per_class = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, labels, scores) / sizes
    return float(per_class.mean())


def euclidean_class_sums(unit: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
    """Per row, the summed Euclidean distance to each class's unit vectors, CHUNK rows at a time."""
    sums = []
    for start in range(0, len(unit), CHUNK):
        gram = unit[start : start + CHUNK] @ unit.T
        distances = (2.0 - 2.0 * gram).clamp_min_(0.0).sqrt_()
        rows = torch.arange(len(distances))
        distances[rows, rows + start] = 0.0
        sums.append(distances @ one_hot)
    return torch.cat(sums)


def embedding_metrics(
    prefix: str,
    labels: np.ndarray,
    embeddings: torch.Tensor,
    silhouette: Literal["euclidean", "cosine"] = "euclidean",
) -> dict[str, float]:
    """kNN macro-F1 and macro silhouette (`silhouette` names its distance) of one split's embeddings."""
    targets = torch.as_tensor(labels)
    predictions = knn_predictions(embeddings, targets).numpy()
    return {
        f"{prefix}_knn_macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        f"{prefix}_silhouette": macro_silhouette(embeddings, targets, silhouette),
    }
