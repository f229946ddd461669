"""Each auxiliary loss against a plain-loop reference and, where one exists, a library."""

import dataclasses
import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses

from common.errors import ConfigError
from study.settings import TrainingSettings
from study.spaces import DistributionSpec, default_space
from trainables.losses import LOSSES, LossContext, Objective, build_aux_loss, loss_entry
from trainables.losses.contrastive import ContrastiveParams
from trainables.losses.cosine_mse import CosineMSEParams
from trainables.losses.registry import LossEntry
from trainables.losses.supcon import SupConParams
from trainables.losses.triplet import TripletLoss, TripletParams

CONTEXT = LossContext(num_classes=3, class_counts=(3, 3, 2))


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Hand-placed 2-D points: three loose clusters with one point on the wrong side."""
    points = torch.tensor(
        [[1.0, 0.1], [0.9, 0.3], [0.2, 1.0], [-0.1, 1.1], [0.1, 0.9], [-1.0, -0.2], [-0.8, 0.1], [0.7, -0.6]],
        dtype=torch.float64,
    )
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    return points, labels


def loop_contrastive(x, y, margin):
    z = F.normalize(x, dim=1)
    terms = []
    for i, j in itertools.combinations(range(len(y)), 2):
        d = torch.linalg.norm(z[i] - z[j])
        terms.append(d**2 if y[i] == y[j] else max(0.0, margin - d) ** 2)
    return 0.5 * sum(terms) / len(terms)


def loop_cosine_mse(x, y):
    terms = []
    for i, j in itertools.combinations(range(len(y)), 2):
        cos = torch.dot(x[i], x[j]) / (x[i].norm() * x[j].norm())
        terms.append((cos - float(y[i] == y[j])) ** 2)
    return sum(terms) / len(terms)


def loop_triplet(x, y, margin):
    values = []
    for a, p, n in itertools.permutations(range(len(y)), 3):
        if y[a] == y[p] and y[a] != y[n]:
            v = torch.linalg.norm(x[a] - x[p]) - torch.linalg.norm(x[a] - x[n]) + margin
            values.append(max(0.0, float(v)))
    positive = [v for v in values if v > 0]
    return sum(positive) / len(positive)


def loop_supcon(x, y, tau, base):
    z = F.normalize(x, dim=1)
    anchors = []
    for i in range(len(y)):
        positives = [p for p in range(len(y)) if p != i and y[p] == y[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / tau) for a in range(len(y)) if a != i)
        logs = [float(z[i] @ z[p]) / tau - math.log(denominator) for p in positives]
        anchors.append(-sum(logs) / len(logs))
    return tau / base * sum(anchors) / len(anchors)


def test_contrastive_matches_loop(batch):
    x, y = batch
    loss = build_aux_loss("contrastive", ContrastiveParams(margin=1.2), CONTEXT)
    assert float(loss(x, y).value) == pytest.approx(float(loop_contrastive(x, y, 1.2)), rel=1e-9)


def test_cosine_mse_matches_loop(batch):
    x, y = batch
    loss = build_aux_loss("cosine_mse", CosineMSEParams(), CONTEXT)
    assert float(loss(x, y).value) == pytest.approx(float(loop_cosine_mse(x, y)), rel=1e-9)


def test_triplet_matches_loop_and_pytorch_metric_learning(batch):
    x, y = batch
    ours = float(build_aux_loss("triplet", TripletParams(margin=0.8), CONTEXT)(x, y).value)
    pml = pml_losses.TripletMarginLoss(
        margin=0.8, distance=pml_distances.LpDistance(normalize_embeddings=False)
    )
    assert ours == pytest.approx(loop_triplet(x, y, 0.8), rel=1e-9)
    assert ours == pytest.approx(float(pml(x, y)), rel=1e-6)


def test_supcon_matches_loop_and_pytorch_metric_learning(batch):
    x, y = batch
    params = SupConParams(temperature=0.3)
    ours = float(build_aux_loss("supcon", params, CONTEXT)(x, y).value)
    assert ours == pytest.approx(loop_supcon(x, y, 0.3, 0.07), rel=1e-9)
    pml = float(pml_losses.SupConLoss(temperature=0.3)(x, y))
    assert ours == pytest.approx(pml * 0.3 / 0.07, rel=1e-6)


@pytest.mark.parametrize("name", ["contrastive", "cosine_mse", "triplet", "supcon", "gloss"])
def test_pair_losses_need_class_repeats(name):
    assert loss_entry(name).needs.class_repeats
    assert not loss_entry("ce").needs.class_repeats


@pytest.mark.parametrize("name", ["triplet", "supcon"])
def test_no_positive_pair_gives_zero_with_graph(name):
    x = torch.randn(3, 4, requires_grad=True)
    result = build_aux_loss(name, loss_entry(name).params(), CONTEXT)(x, torch.tensor([0, 1, 2]))
    result.value.backward()
    assert result.value.item() == 0.0
    assert result.stats["degenerate"] == 1.0
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_objective_weights_terms():
    torch.manual_seed(0)
    emb, logits, y = torch.randn(6, 4), torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    aux = build_aux_loss("supcon", SupConParams(), CONTEXT)
    total, terms = Objective(aux, lam=0.25)(emb, logits, y)
    ce = F.cross_entropy(logits, y)
    expected = 0.25 * aux(emb, y).value + 0.75 * ce
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert terms["ce"] == pytest.approx(float(ce))
    standalone_total, standalone_terms = Objective(aux, lam=1.0)(emb, logits, y)
    assert "ce" not in standalone_terms
    assert float(standalone_total) == pytest.approx(float(aux(emb, y).value), rel=1e-6)


def test_class_weighted_cross_entropy():
    logits, y = torch.randn(5, 2), torch.tensor([0, 0, 0, 0, 1])
    weights = torch.tensor([0.625, 2.5])
    total, _ = Objective(None, lam=0.0, class_weights=weights)(logits, logits, y)
    per_example = F.cross_entropy(logits, y, reduction="none") * weights[y]
    assert float(total) == pytest.approx(float(per_example.sum() / weights[y].sum()), rel=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("contrastive", {"margin": 0.0}),
        ("contrastive", {"lam": 1.5}),
        ("triplet", {"margin": -1.0}),
        ("supcon", {"temperature": 0.0}),
    ],
)
def test_invalid_parameters_are_refused(name, params):
    with pytest.raises(ConfigError, match="loss_params"):
        loss_entry(name).params(**params)


def space_problems(losses) -> list[str]:
    """Registry entries whose default search space is missing, does not parse as a spec's
    distributions, or names a setting the loss does not have."""
    found = []
    for name, entry in losses.items():
        space = getattr(entry, "space", None)
        if space is None:
            found.append(f"{name}: no space")
            continue
        known = searchable_names(entry)
        for param, written in space.items():
            try:
                DistributionSpec.model_validate(written)
            except ValidationError:
                found.append(f"{name}.{param}: not a distribution")
            if param not in known:
                found.append(f"{name}.{param}: not a setting of {name}")
    return found


def searchable_names(entry: LossEntry) -> set[str]:
    return {f.name for f in dataclasses.fields(entry.params)} | set(TrainingSettings.model_fields)


def test_every_loss_declares_a_valid_default_search_space():
    assert space_problems(LOSSES) == []
    assert set(default_space("gloss")) == {"lam", "sigma", "gamma", "k", "propagation", "alpha"}


def test_a_loss_without_a_space_is_caught():
    """The control: the registry refuses an entry without a space, and the check above catches an
    entry that has none or a wrong one."""
    with pytest.raises(TypeError, match="space"):
        LossEntry(TripletParams, TripletLoss, "no space")  # type: ignore[call-arg]
    spaceless = SimpleNamespace(params=TripletParams, space=None)
    wrong = LossEntry(
        TripletParams, TripletLoss, space={"margn": {"uniform": [1, 2]}, "lam": {"uniform": [1]}}
    )
    assert space_problems({"fake": spaceless, "odd": wrong}) == [
        "fake: no space",
        "odd.margn: not a setting of odd",
        "odd.lam: not a distribution",
    ]
