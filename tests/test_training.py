"""The training loop on real data: every loss at both fidelities, resumption, divergence,
standalone mode and early stopping."""

import math

import numpy as np
import pytest
import torch

from trainables.config import TrialConfig
from trainables.losses import LOSSES
from trainables.training.metrics import knn_predictions
from trainables.training.trainer import Trainer

TIMING = {"epoch_time_s", "train_time_s", "samples_per_s", "peak_memory_mb"}
TINY = {
    "dataset": "r8",
    "model": "tiny-bert",
    "fidelity": "full",
    "train_size": 48,
    "eval_size": 40,
    "batch_size": 16,
    "max_length": 48,
    "lr": 5e-4,
}
FROZEN = {"dataset": "r8", "train_size": 400, "eval_size": 200, "epochs": 5}


def run(config: dict, data_dir) -> list[dict]:
    return list(Trainer(TrialConfig.from_dict({**config, "data_dir": str(data_dir)})).run())


def without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING}


@pytest.mark.parametrize("loss", list(LOSSES))
def test_tiny_bert_trains_two_epochs_with_each_loss(loss, data_dir):
    records = run({**TINY, "loss": loss, "epochs": 2}, data_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["status"] == "completed"
    last = records[-1]
    assert math.isfinite(last["train_loss"]) and last["samples_per_s"] > 0
    assert ("train_aux" in last) == (LOSSES[loss].build is not None)
    assert {"val_accuracy", "val_macro_f1", "val_knn_macro_f1", "val_silhouette"} <= set(last)
    best = records[last["best_epoch"] - 1]
    assert last["selected_test_macro_f1"] == best["test_macro_f1"], "test metric of the best val epoch"


def test_tiny_bert_cross_entropy_learns(data_dir):
    losses = [r["train_loss"] for r in run({**TINY, "epochs": 4, "schedule": "constant"}, data_dir)]
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("loss", list(LOSSES))
def test_frozen_minilm_beats_chance_with_each_loss(loss, data_dir):
    last = run({**FROZEN, "loss": loss, "batch_sampler": "class_aware"}, data_dir)[-1]
    majority = 0.52
    assert last["val_accuracy"] > majority + 0.2
    assert last["val_macro_f1"] > 0.4, "8 classes: chance macro-F1 is about 0.09"


@pytest.mark.parametrize("config", [{**FROZEN, "loss": "gloss"}, {**TINY, "loss": "supcon", "epochs": 4}])
def test_resumed_training_equals_uninterrupted(config, data_dir):
    """A trainer restored from the state taken after epoch 2 continues as the one that took it
    (taking a state scores the best epoch's test embeddings, so both take one)."""
    config = {**config, "epochs": 4, "data_dir": str(data_dir)}
    kept = Trainer(TrialConfig.from_dict(config))
    uninterrupted = [without_timing(kept.run_epoch()) for _ in range(2)]
    kept.state_dict()
    uninterrupted += [without_timing(r) for r in kept.run()]
    first = Trainer(TrialConfig.from_dict(config))
    head = [without_timing(first.run_epoch()) for _ in range(2)]
    state = first.state_dict()
    second = Trainer(TrialConfig.from_dict(config))
    second.load_state_dict(state)
    tail = [without_timing(r) for r in second.run()]
    assert head + tail == uninterrupted


def test_absurd_learning_rate_ends_as_diverged(data_dir):
    records = run({**FROZEN, "loss": "gloss", "lr": 1e8, "max_grad_norm": None}, data_dir)
    assert records[-1]["status"] == "diverged"
    assert "non-finite" in records[-1]["diverged_reason"]


def test_standalone_mode_selects_by_silhouette_and_ends_with_a_probe(data_dir):
    records = run({**FROZEN, "loss": "gloss", "loss_params": {"lam": 1.0}}, data_dir)
    last = records[-1]
    assert last["monitor"] == "val_silhouette"
    assert "val_accuracy" not in records[0], "no trained head in standalone mode"
    assert last["selected_test_accuracy"] == last["probe_test_accuracy"] > 0.7


def test_early_stopping_after_patience(data_dir):
    records = run({**FROZEN, "lr": 1e-12, "patience": 2, "epochs": 10}, data_dir)
    assert [r["status"] for r in records] == ["running", "running", "early_stopped"]
    assert records[-1]["best_epoch"] == 1


def test_the_test_split_is_evaluated_at_new_best_epochs_only(data_dir):
    records = run({**FROZEN, "loss": "ce", "lr": 1e-12, "patience": 2, "epochs": 10}, data_dir)
    tested = [("test_macro_f1" in r, "test_silhouette" in r, "test_knn_macro_f1" in r) for r in records]
    assert tested == [(True, False, False)] + [(False, False, False)] * 2, (
        "epochs 2 and 3 do not beat epoch 1 on validation; the embedding metrics wait for the end"
    )
    assert all("val_macro_f1" in r and "val_silhouette" in r for r in records)
    assert "selected_test_silhouette" not in records[0], "not scored while it can be superseded"


def test_the_best_epochs_test_embeddings_are_scored_once_with_the_numbers_of_that_epoch(data_dir):
    """kNN and silhouette of the test split are scored when training ends (or before a
    checkpoint), on the embeddings of the best validation epoch: equal to scoring that epoch's
    test embeddings at the time, by the metrics' independent references (scikit-learn's
    silhouette on unit vectors, the leave-one-out kNN), and unlike the last epoch's."""
    from sklearn.metrics import f1_score, silhouette_samples

    config = TrialConfig.from_dict(
        {**FROZEN, "loss": "ce", "epochs": 8, "patience": 3, "data_dir": str(data_dir)}
    )
    trainer = Trainer(config)
    labels = trainer.data.test.labels
    at_best, records = None, []
    for record in trainer.run():
        records.append(record)
        if trainer.best.epoch == record["epoch"] and not trainer.finished:
            at_best = trainer.embed(trainer.data.test)[0]
    last = records[-1]
    assert 1 < last["best_epoch"] < last["epoch"], "the best epoch must be neither the first nor the last"
    assert all("selected_test_silhouette" not in r for r in records[:-1])

    def silhouette(embeddings: torch.Tensor) -> float:
        """The paper's macro silhouette: members of singleton classes left out first."""
        classes, counts = np.unique(labels, return_counts=True)
        kept = np.isin(labels, classes[counts > 1])
        unit = torch.nn.functional.normalize(embeddings.double(), dim=1).numpy()[kept]
        per_sample = silhouette_samples(unit, labels[kept])
        return float(np.mean([per_sample[labels[kept] == c].mean() for c in np.unique(labels[kept])]))

    knn = knn_predictions(at_best, torch.from_numpy(labels)).numpy()
    assert last["selected_test_silhouette"] == pytest.approx(silhouette(at_best), abs=1e-9)
    assert last["selected_test_knn_macro_f1"] == pytest.approx(f1_score(labels, knn, average="macro"))
    assert last["selected_test_silhouette"] != pytest.approx(silhouette(trainer.embed(trainer.data.test)[0]))


SELECTED = ("best_epoch", "best_score", "selected_test_accuracy", "selected_test_macro_f1")
SELECTED += ("selected_test_knn_macro_f1", "selected_test_silhouette")


@pytest.mark.parametrize(
    "config",
    [
        {**FROZEN, "loss": "ce", "lr": 1e-12, "patience": 2, "epochs": 10},
        {**TINY, "loss": "supcon", "epochs": 4, "save_embeddings": True},
        {**FROZEN, "loss": "gloss", "loss_params": {"lam": 1.0}, "epochs": 3},
    ],
)
def test_test_curves_are_an_option_and_the_selected_test_numbers_do_not_change(config, data_dir):
    """With `test_curves` the test split is evaluated every epoch, as before it was skipped at
    epochs that do not become best: the records of each epoch and the selected test numbers are
    the same, bar the test head metrics of the epochs that never count."""
    curves = Trainer(TrialConfig.from_dict({**config, "test_curves": True, "data_dir": str(data_dir)}))
    every = [without_timing(r) for r in curves.run()]
    lean = Trainer(TrialConfig.from_dict({**config, "data_dir": str(data_dir)}))
    selected = [without_timing(r) for r in lean.run()]
    assert [{k: r[k] for k in SELECTED if k in r} for r in selected] == [
        {k: r[k] for k in SELECTED if k in r} for r in every
    ]
    assert selected[-1]["selected_test_macro_f1"] == every[-1]["selected_test_macro_f1"]
    skipped = {"test_accuracy", "test_macro_f1"}
    for lean_record, full_record in zip(selected, every, strict=True):
        assert lean_record == {k: v for k, v in full_record.items() if k in lean_record}
        assert set(full_record) - set(lean_record) <= skipped
    if config.get("loss_params") != {"lam": 1.0}:  # standalone rows have no head to test
        assert all("test_macro_f1" in r for r in every), "test curves: every epoch"
    if config.get("save_embeddings"):
        assert torch.equal(lean.best_test_embeddings, curves.best_test_embeddings)


def test_two_encoder_passes_option(data_dir):
    last = run({**TINY, "loss": "gloss", "epochs": 1, "encoder_passes": 2}, data_dir)[-1]
    assert last["status"] == "completed" and math.isfinite(last["train_aux"])


@pytest.mark.slow
def test_compiled_model_computes_what_eager_computes(data_dir):
    """`compile: true` compiles the model in place: its forward gives eager's outputs (dropout
    off; compiled dropout draws other masks), it trains, and checkpoints keep eager's keys."""
    from torch._dynamo.utils import counters  # torch's own record of the graphs it compiled

    config = {**TINY, "loss": "gloss", "epochs": 1, "compile": True, "data_dir": str(data_dir)}
    trainer = Trainer(TrialConfig.from_dict(config))
    batch = trainer.data.val.batch(np.arange(16))
    trainer.model.eval()
    graphs = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        compiled, eager = trainer.model(batch), trainer.model.forward(batch)
    assert counters["stats"]["unique_graphs"] > graphs, "nothing was compiled"
    for ours, reference in zip(compiled, eager, strict=True):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    assert math.isfinite(trainer.run_epoch()["train_loss"])
    assert not any("_orig_mod" in key for key in trainer.state_dict()["model"])


def loop_knn(x: np.ndarray, y: np.ndarray, k: int) -> list[int]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    predictions = []
    for i in range(len(x)):
        similarity = unit @ unit[i]
        similarity[i] = -np.inf
        neighbours = np.argsort(-similarity)[:k]
        votes = np.bincount(y[neighbours], minlength=y.max() + 1)
        winners = np.flatnonzero(votes == votes.max())
        nearest = y[neighbours[0]]
        predictions.append(int(nearest if nearest in winners else winners[0]))
    return predictions


def test_knn_is_leave_one_out_with_ties_to_the_nearest():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05], [0.0, 1.0], [0.1, 0.9], [0.05, 0.95]])
    y = torch.tensor([0, 0, 1, 1, 1, 0])
    assert knn_predictions(x, y, k=2).tolist() == loop_knn(x.numpy(), y.numpy(), 2) == [1, 1, 0, 0, 0, 1]
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(80, 6, generator=generator), torch.randint(0, 3, (80,), generator=generator)
    assert knn_predictions(x, y, k=5).tolist() == loop_knn(x.numpy(), y.numpy(), 5)


@pytest.mark.parametrize("optimizer", ["adamw", "adam"])
def test_the_fused_optimizer_takes_the_reference_loops_steps(optimizer):
    """build_optimizer's fused kernel against PyTorch's plain per-parameter loop (its reference
    implementation) over several steps with weight decay: the same parameters."""
    from trainables.training.optim import build_optimizer

    config = TrialConfig.from_dict({"dataset": "r8", "optimizer": optimizer, "lr": 1e-2, "weight_decay": 0.1})
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    loop_model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    loop_model.load_state_dict(fused_model.state_dict())
    initial = fused_model[0].weight.detach().clone()
    fused = build_optimizer(fused_model.parameters(), config)
    reference_class = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}[optimizer]
    reference = reference_class(
        loop_model.parameters(), lr=1e-2, weight_decay=0.1, foreach=False, fused=False
    )
    assert fused.defaults["fused"], "the fused kernel is what runs"
    inputs, labels = torch.randn(32, 16), torch.randint(0, 3, (32,))
    for _ in range(5):
        for model, step in ((fused_model, fused), (loop_model, reference)):
            step.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs), labels).backward()
            step.step()
    for ours, theirs in zip(fused_model.parameters(), loop_model.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(fused_model[0].weight, initial), "the steps moved the parameters"


@pytest.mark.parametrize(("loss", "body_trains"), [("none", False), ("ce", True)])
def test_the_control_row_trains_the_head_alone(loss, body_trains, data_dir):
    """`none` (the control row) keeps the projection as built, so its embeddings are the untrained
    encoder's; only the head learns. The same run with `ce` (the control of this test) moves both."""
    trainer = Trainer(TrialConfig.from_dict({**FROZEN, "loss": loss, "epochs": 2, "data_dir": str(data_dir)}))
    body = {k: v.clone() for k, v in trainer.model.body.state_dict().items()}
    head = {k: v.clone() for k, v in trainer.model.head.state_dict().items()}
    records = list(trainer.run())
    moved = any(not torch.equal(v, trainer.model.body.state_dict()[k]) for k, v in body.items())
    assert moved == body_trains
    assert any(not torch.equal(v, trainer.model.head.state_dict()[k]) for k, v in head.items())
    assert records[-1]["status"] == "completed" and math.isfinite(records[-1]["train_loss"])


def test_a_weights_only_state_restores_the_weights_and_starts_the_moments_afresh(data_dir):
    """checkpoint.optimizer: false leaves Adam's moments out of the state: the restored trainer
    has the weights and the epoch, an empty optimizer state, and trains on."""
    config = TrialConfig.from_dict({**FROZEN, "loss": "ce", "epochs": 3, "data_dir": str(data_dir)})
    first = Trainer(config)
    first.run_epoch()
    full, weights_only = first.state_dict(), first.state_dict(optimizer=False)
    assert full["optimizer"]["state"] and weights_only["optimizer"] is None
    restored = Trainer(config)
    restored.load_state_dict(weights_only)
    assert restored.epoch == 1 and not restored.optimizer.state_dict()["state"]
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, restored.model.state_dict()[name]), name
    assert restored.run_epoch()["epoch"] == 2
