"""The linear probe that classifies in standalone mode: logistic regression on frozen embeddings."""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score


def linear_probe(
    train: tuple[torch.Tensor, np.ndarray], evaluations: dict[str, tuple[torch.Tensor, np.ndarray]]
) -> dict[str, float]:
    """Fit on L2-normalised train embeddings; accuracy and macro-F1 on each named split."""
    probe = LogisticRegression(max_iter=2000)
    probe.fit(F.normalize(train[0].float(), dim=1).numpy(), train[1])
    metrics = {}
    for name, (embeddings, labels) in evaluations.items():
        predictions = probe.predict(F.normalize(embeddings.float(), dim=1).numpy())
        metrics[f"probe_{name}_accuracy"] = float(accuracy_score(labels, predictions))
        metrics[f"probe_{name}_macro_f1"] = float(
            f1_score(labels, predictions, average="macro", zero_division=0)
        )
    return metrics
