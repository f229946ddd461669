"""Embedding metrics and the standalone probe against independent references (scikit-learn)."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import normalize

from trainables.training.metrics import macro_silhouette


def sklearn_macro_silhouette(x: np.ndarray, y: np.ndarray, metric: str) -> float:
    """scikit-learn's silhouette on L2-normalised rows, singleton classes removed first, averaged
    per class and then over classes."""
    classes, counts = np.unique(y, return_counts=True)
    kept = np.isin(y, classes[counts > 1])
    x, y = x[kept], y[kept]
    samples = silhouette_samples(normalize(x), y, metric=metric)
    return float(np.mean([samples[y == c].mean() for c in np.unique(y)]))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_macro_silhouette_matches_sklearn(metric, monkeypatch):
    monkeypatch.setattr("trainables.training.metrics.CHUNK", 7)  # several chunks of rows
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(60, 5, generator=generator) * 3.0
    y = torch.randint(0, 4, (60,), generator=generator)
    y[0] = 5  # a singleton class: its member is removed before computing
    expected = sklearn_macro_silhouette(x.numpy().astype(np.float64), y.numpy(), metric)
    assert macro_silhouette(x, y, metric) == pytest.approx(expected, abs=1e-9)


def test_singleton_classes_are_dropped_not_scored_zero():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, -1.0]])
    y = torch.tensor([0, 0, 1, 1, 2])
    assert macro_silhouette(x, y) == pytest.approx(macro_silhouette(x[:4], y[:4]), abs=1e-12)
    assert macro_silhouette(x, y) > 0.8


def test_macro_silhouette_is_nan_with_fewer_than_two_classes_left():
    x = torch.randn(4, 3)
    assert math.isnan(macro_silhouette(x, torch.tensor([0, 0, 0, 1])))
