"""Evaluation metrics: the head's accuracy and macro-F1, and head-free embedding metrics
(leave-one-out kNN macro-F1 and macro silhouette) so standalone losses have curves too."""

import math

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


def macro_silhouette(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the mean silhouette (cosine distance) of the class's members.

    With unit vectors z, the summed distance from z_i to class c is n_c - z_i . (sum of c's z),
    so the cost is O(n d C) rather than O(n^2 d). Members of singleton classes score 0
    (scikit-learn's convention); NaN with one class.
    """
    classes, labels = torch.unique(labels, return_inverse=True)
    if len(classes) < 2:
        return math.nan
    unit = F.normalize(embeddings.double(), dim=1)
    one_hot = F.one_hot(labels, len(classes)).double()
    sizes = one_hot.sum(dim=0)
    distance_sums = (sizes[None, :] - unit @ (one_hot.T @ unit).T).clamp_min(0.0)
    own_size = sizes[labels]
    a = distance_sums.gather(1, labels[:, None]).squeeze(1) / (own_size - 1).clamp_min(1)
    b = (distance_sums / sizes).scatter(1, labels[:, None], float("inf")).min(dim=1).values
    scores = torch.where(own_size > 1, (b - a) / torch.maximum(a, b).clamp_min(1e-12), 0.0)
    per_class = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, labels, scores) / sizes
    return float(per_class.mean())


def embedding_metrics(prefix: str, labels: np.ndarray, embeddings: torch.Tensor) -> dict[str, float]:
    """kNN macro-F1 and macro silhouette of one split's embeddings."""
    targets = torch.as_tensor(labels)
    predictions = knn_predictions(embeddings, targets).numpy()
    return {
        f"{prefix}_knn_macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        f"{prefix}_silhouette": macro_silhouette(embeddings, targets),
    }
