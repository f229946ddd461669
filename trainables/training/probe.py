"""The linear probe that classifies in standalone mode, on frozen, L2-normalised embeddings:
by default a class-weighted linear layer trained with Adam (as the authors' code does), or
scikit-learn's logistic regression."""

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from trainables.losses.base import balanced_class_weights

ADAM_LR = 1e-3
ADAM_EPOCHS = 100
ADAM_BATCH = 128


def fit_linear_adam(embeddings: torch.Tensor, labels: np.ndarray, seed: int) -> torch.nn.Linear:
    """A linear layer (zero-initialised) trained with Adam, lr 1e-3, for 100 epochs of shuffled
    mini-batches of 128 (the shuffle seeded by `seed`), on balanced class-weighted cross-entropy
    (N / (C n_c), as the class-weighted CE head). Deterministic for a seed on one machine."""
    targets = torch.as_tensor(labels, dtype=torch.long)
    num_classes = int(targets.max()) + 1
    counts = tuple(torch.bincount(targets, minlength=num_classes).tolist())
    weights = balanced_class_weights(counts).float()
    layer = torch.nn.Linear(embeddings.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(layer.parameters(), lr=ADAM_LR)
    generator = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny steps: handing them to several threads costs far more (20x seen)
    try:
        with torch.enable_grad():
            for _ in range(ADAM_EPOCHS):
                for batch in torch.randperm(len(targets), generator=generator).split(ADAM_BATCH):
                    loss = F.cross_entropy(layer(embeddings[batch]), targets[batch], weight=weights)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return layer.eval()


def linear_probe(
    train: tuple[torch.Tensor, np.ndarray],
    evaluations: dict[str, tuple[torch.Tensor, np.ndarray]],
    probe: Literal["linear_adam", "logistic_regression"] = "linear_adam",
    seed: int = 0,
) -> dict[str, float]:
    """Fit `probe` on L2-normalised train embeddings; accuracy and macro-F1 on each named split."""
    inputs = F.normalize(train[0].detach().float(), dim=1)
    if probe == "logistic_regression":
        model = LogisticRegression(max_iter=2000).fit(inputs.numpy(), train[1])
        predict = model.predict
    else:
        layer = fit_linear_adam(inputs, train[1], seed)

        def predict(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return layer(torch.from_numpy(x)).argmax(dim=1).numpy()

    metrics = {}
    for name, (embeddings, labels) in evaluations.items():
        predictions = predict(F.normalize(embeddings.detach().float(), dim=1).numpy())
        metrics[f"probe_{name}_accuracy"] = float(accuracy_score(labels, predictions))
        metrics[f"probe_{name}_macro_f1"] = float(
            f1_score(labels, predictions, average="macro", zero_division=0)
        )
    return metrics
