"""Embedding metrics and the standalone probe against independent references (scikit-learn)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, silhouette_samples
from sklearn.preprocessing import normalize

from analysis.report import measures_sentence
from trainables.training.metrics import macro_silhouette
from trainables.training.probe import fit_linear_adam, linear_probe


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


@pytest.fixture
def one_thread():
    """Tiny Adam steps: one thread avoids thread hand-off costs on a shared, busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def separable_toy(seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Three well separated, unequal Gaussian blobs in 8 dimensions (separable after L2 norm)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(8)[:3] * 5.0
    labels = np.repeat([0, 1, 2], [120, 40, 20])
    x = centres[labels] + 0.3 * torch.randn(len(labels), 8, generator=generator)
    return x, labels


def test_adam_probe_separates_a_separable_set_and_is_deterministic(one_thread):
    train, test = separable_toy(0), separable_toy(1)
    first = linear_probe(train, {"test": test}, "linear_adam", seed=3)
    assert first["probe_test_accuracy"] == 1.0 and first["probe_test_macro_f1"] == 1.0
    assert linear_probe(train, {"test": test}, "linear_adam", seed=3) == first


def test_adam_probe_is_class_weighted(one_thread):
    """Two overlapping classes, 9:1: unweighted CE favours the majority; balanced weights recover
    more of the minority class (higher recall on it) than the unweighted optimum would."""
    generator = torch.Generator().manual_seed(0)
    labels = np.repeat([0, 1], [450, 50])
    x = torch.stack([torch.as_tensor(labels, dtype=torch.float32), torch.ones(500)], dim=1)
    x[:, 0] += 1.0 * torch.randn(500, generator=generator)
    layer = fit_linear_adam(F.normalize(x, dim=1), labels, seed=0)
    with torch.no_grad():
        predictions = layer(F.normalize(x, dim=1)).argmax(dim=1).numpy()
    minority_recall = (predictions[labels == 1] == 1).mean()
    unweighted = (
        LogisticRegression().fit(F.normalize(x, dim=1).numpy(), labels).predict(F.normalize(x, dim=1).numpy())
    )
    assert minority_recall > (unweighted[labels == 1] == 1).mean() + 0.2


def test_logistic_regression_option_is_sklearn_on_normalised_embeddings():
    train, test = separable_toy(0), separable_toy(1)
    test_x = test[0].clone()
    test_x[:5] = test_x[:5].flip(1)  # a few hard points so the score is not trivially 1
    reference = LogisticRegression(max_iter=2000).fit(normalize(train[0].numpy()), train[1])
    predictions = reference.predict(normalize(test_x.numpy()))
    metrics = linear_probe(train, {"test": (test_x, test[1])}, "logistic_regression")
    assert metrics["probe_test_accuracy"] == pytest.approx(float((predictions == test[1]).mean()))
    assert metrics["probe_test_macro_f1"] == pytest.approx(
        f1_score(test[1], predictions, average="macro", zero_division=0)
    )


def test_report_names_the_silhouette_and_probe_the_records_used():
    runs = pd.DataFrame({"silhouette_metric": ["euclidean", "euclidean"], "probe": ["linear_adam", None]})
    sentence = measures_sentence(runs)
    assert "euclidean distance" in sentence and "linear layer trained with Adam" in sentence
    assert measures_sentence(pd.DataFrame({"seed": [0]})) == ""
