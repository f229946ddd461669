"""G-Loss: propagation against scikit-learn and a numpy closed form, the loss against hand
computations, and the degenerate batches that must never give NaN."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.semi_supervised import LabelSpreading

from common.errors import ConfigError
from trainables.losses import LossContext
from trainables.losses.gloss import GLoss, GLossParams, label_propagation
from trainables.losses.sigma import sigma_heuristic


def clustered(n=12, classes=3, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(size=(classes, dim))
    points = centres[labels] + 0.6 * rng.normal(size=(n, dim))
    return torch.tensor(points), torch.tensor(labels)


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def numpy_weights(x, sigma, k=None):
    z = unit(x)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    np.fill_diagonal(w, 0.0)
    if k is not None:
        keep = np.zeros_like(w, dtype=bool)
        for i, row in enumerate(w):
            keep[i, np.argsort(-row)[:k]] = True
        w = np.maximum(w * keep, (w * keep).T)
    return w


def numpy_harmonic(w, labels, labeled, classes):
    t = w / w.sum(1, keepdims=True)
    u, l_ = ~labeled, labeled
    y_l = np.eye(classes)[labels[l_]]
    f_u = np.linalg.solve(np.eye(u.sum()) - t[np.ix_(u, u)], t[np.ix_(u, l_)] @ y_l)
    return f_u / f_u.sum(1, keepdims=True)


LABELED = torch.tensor([1, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0], dtype=torch.bool)


@pytest.mark.parametrize("sigma", [0.3, 1.0])
@pytest.mark.parametrize("alpha", [0.2, 0.9])
def test_spreading_matches_sklearn_label_spreading(sigma, alpha):
    x, y = clustered()
    ours = label_propagation(x, y, LABELED, 3, sigma=sigma, alpha=alpha)
    targets = np.where(LABELED.numpy(), y.numpy(), -1)
    model = LabelSpreading(kernel="rbf", gamma=1 / (2 * sigma**2), alpha=alpha, max_iter=100000, tol=1e-14)
    model.fit(unit(x), targets)
    hidden = ~LABELED.numpy()
    np.testing.assert_allclose(ours.numpy()[hidden], model.label_distributions_[hidden], atol=1e-8)
    np.testing.assert_array_equal(ours.numpy()[~hidden], np.eye(3)[y.numpy()[~hidden]])


@pytest.mark.parametrize("k", [None, 3, 6])
def test_harmonic_matches_numpy_closed_form(k):
    x, y = clustered()
    ours = label_propagation(x, y, LABELED, 3, sigma=0.5, k=k)
    expected = numpy_harmonic(numpy_weights(x, 0.5, k), y.numpy(), LABELED.numpy(), 3)
    np.testing.assert_allclose(ours.numpy()[~LABELED.numpy()], expected, atol=1e-6)


def test_propagation_is_differentiable():
    x, y = clustered(n=6)
    labeled = torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.bool)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e: label_propagation(e, y, labeled, 3, sigma=0.7, k=3), (x,), atol=1e-6
    )
    assert torch.autograd.gradcheck(
        lambda e: label_propagation(e, y, labeled, 3, sigma=0.7, alpha=0.8), (x,), atol=1e-6
    )


def make_loss(mask=LABELED, **params) -> GLoss:
    loss = GLoss(GLossParams(**params), LossContext(num_classes=3, class_counts=(6, 4, 2)))
    loss.labeled_mask = lambda size, device: mask[:size].to(device)
    return loss


def test_loss_is_mean_negative_log_probability_of_hidden_nodes():
    x, y = clustered()
    labeled = LABELED.numpy()
    f_u = numpy_harmonic(numpy_weights(x, 0.5), y.numpy(), labeled, 3)
    expected = -np.log(f_u[np.arange(len(f_u)), y.numpy()[~labeled]]).mean()
    result = make_loss(sigma=0.5)(x, y)
    assert float(result.value) == pytest.approx(expected, rel=1e-6)
    assert result.stats["excluded"] == 0.0


def test_hidden_nodes_of_an_invisible_class_are_excluded_and_counted():
    x, y = clustered()
    mask = LABELED & (y != 2)
    labeled = mask.numpy()
    w = numpy_weights(x, 0.5)
    f_u = numpy_harmonic(w, y.numpy(), labeled, 3)
    hidden_labels = y.numpy()[~labeled]
    keep = hidden_labels != 2
    expected = -np.log(f_u[np.arange(len(f_u)), hidden_labels][keep]).mean()
    result = make_loss(mask, sigma=0.5)(x, y)
    assert float(result.value) == pytest.approx(expected, rel=1e-6)
    assert result.stats["excluded"] == pytest.approx(1 - keep.mean())


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_reference_variant_matches_hand_computation(lam):
    x, y = clustered()
    labeled = LABELED.numpy()
    w = numpy_weights(x, 0.5)
    d = w.sum(1)
    s = w / np.sqrt(np.outer(d, d))
    p = s / s.sum(0, keepdims=True)
    p = p / p.sum(1, keepdims=True)
    u = ~labeled
    y_l = np.eye(3)[y.numpy()[labeled]]
    f_u = np.linalg.solve(np.eye(u.sum()) - p[np.ix_(u, u)], p[np.ix_(u, labeled)] @ y_l)
    weights = 12 / (3 * np.array([6, 4, 2]))
    targets = y.numpy()[u]
    log_softmax = f_u - np.log(np.exp(f_u).sum(1, keepdims=True))
    per_node = -log_softmax[np.arange(len(targets)), targets] * weights[targets]
    expected = per_node.sum() / weights[targets].sum()
    if lam < 1:
        expected /= u.sum()
    result = make_loss(sigma=0.5, variant="reference", lam=lam)(x, y)
    assert float(result.value) == pytest.approx(expected, rel=1e-6)


def assert_finite_value_and_gradient(x, y, **params):
    x = x.clone().float().requires_grad_(True)
    loss = GLoss(GLossParams(**params), LossContext(num_classes=4, class_counts=(1, 1, 1, 1)))
    result = loss(x, y)
    result.value.backward()
    assert torch.isfinite(result.value), result
    assert torch.isfinite(x.grad).all()
    return result


DEGENERATE = {
    "one class only": (torch.randn(8, 4), torch.zeros(8, dtype=torch.long), {}),
    "identical embeddings": (torch.ones(8, 4), torch.arange(8) % 2, {}),
    "tiny sigma": (torch.randn(8, 4), torch.arange(8) % 2, {"sigma": 1e-4}),
    "huge sigma": (torch.randn(8, 4), torch.arange(8) % 2, {"sigma": 1e4}),
    "k at least B - 1": (torch.randn(8, 4), torch.arange(8) % 2, {"k": 7}),
    "last batch smaller than k": (torch.randn(3, 4), torch.tensor([0, 1, 1]), {"k": 16}),
    "single example": (torch.randn(1, 4), torch.tensor([0]), {}),
    "two examples": (torch.randn(2, 4), torch.tensor([0, 0]), {"gamma": 0.9}),
    "zero vectors": (torch.zeros(6, 4), torch.tensor([0, 1, 0, 1, 0, 1]), {}),
    "spreading, tiny sigma": (
        torch.randn(8, 4),
        torch.arange(8) % 2,
        {"sigma": 1e-4, "propagation": "spreading"},
    ),
    "reference, tiny sigma": (
        torch.randn(8, 4),
        torch.arange(8) % 2,
        {"sigma": 1e-4, "variant": "reference"},
    ),
    "float32 solve": (torch.randn(16, 4), torch.arange(16) % 4, {"solve_dtype": "float32", "k": 3}),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_batches_stay_finite(case):
    x, y, params = DEGENERATE[case]
    assert_finite_value_and_gradient(x, y, **params)


def test_class_only_among_hidden_nodes_is_excluded():
    torch.manual_seed(3)
    x, y = torch.randn(8, 4), torch.tensor([0, 0, 0, 0, 0, 0, 0, 1])
    for _ in range(20):
        result = assert_finite_value_and_gradient(x, y, gamma=0.5)
        assert 0.0 <= result.stats["excluded"] <= 1.0


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(2, 24),
    classes=st.integers(1, 4),
    log_sigma=st.floats(-4, 4),
    k=st.one_of(st.none(), st.integers(1, 30)),
    gamma=st.floats(0.05, 0.95),
    spreading=st.booleans(),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-6, 1.0, 1e4]),
)
def test_any_batch_gives_finite_loss_and_gradient(size, classes, log_sigma, k, gamma, spreading, seed, scale):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(size, 6, generator=generator) * scale
    y = torch.randint(0, classes, (size,), generator=generator)
    assert_finite_value_and_gradient(
        x, y, sigma=10**log_sigma, k=k, gamma=gamma, propagation="spreading" if spreading else "harmonic"
    )


@settings(max_examples=40, deadline=None)
@given(size=st.integers(3, 20), log_sigma=st.floats(-2, 2), seed=st.integers(0, 2**16))
def test_distributions_are_rows_summing_to_one_or_zero(size, log_sigma, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(size, 5, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (size,), generator=generator)
    labeled = torch.zeros(size, dtype=torch.bool)
    labeled[: size // 2] = True
    sums = label_propagation(x, y, labeled, 3, sigma=10**log_sigma).sum(dim=1)
    assert torch.all(((sums - 1).abs() < 1e-9) | (sums == 0))


@pytest.mark.parametrize(
    "params",
    [
        {"sigma": 0.0},
        {"sigma": -1.0},
        {"gamma": 1.0},
        {"gamma": 0.0},
        {"k": 0},
        {"alpha": 1.0},
        {"lam": -0.1},
    ],
)
def test_impossible_parameters_are_refused(params):
    with pytest.raises(ConfigError, match="loss_params"):
        GLossParams(**params)


def test_k_must_be_below_batch_size():
    with pytest.raises(ConfigError, match="batch size"):
        GLossParams(k=32).check_batch_size(32)
    GLossParams(k=16).check_batch_size(32)


def test_sigma_heuristics_follow_their_definitions():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.8, 0.6]])
    y = torch.tensor([0, 1, 0, 1])
    z = unit(x.numpy())
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    upper = d[np.triu_indices(4, 1)]
    assert sigma_heuristic("sqrt", x, y) == pytest.approx(np.sqrt(np.median(upper) / 3))
    cross = d[y.numpy()[:, None] != y.numpy()[None]]
    assert sigma_heuristic("dicm", x, y) == pytest.approx(cross.min() / 3)


def test_sigma_heuristic_is_resolved_from_pretrained_embeddings():
    x, y = clustered()
    context = LossContext(3, (4, 4, 4), pretrained_embeddings=lambda: (x, y))
    loss = GLoss(GLossParams(sigma="sqrt"), context)
    assert loss.sigma == pytest.approx(sigma_heuristic("sqrt", x, y))
