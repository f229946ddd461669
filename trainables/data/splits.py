"""Stratified, seeded splits and subsets: validation from train, and small subsets for quick runs."""

from dataclasses import dataclass

import numpy as np

from common.errors import ConfigError
from trainables.data.corpus import Corpus


@dataclass(frozen=True)
class SplitIndices:
    """Indices into the corpus: train and val into its train split, test into its test split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def allocate(counts: np.ndarray, total: int, minimum: np.ndarray, maximum: np.ndarray) -> np.ndarray:
    """Split `total` across classes in proportion to `counts` (largest remainder), within bounds."""
    quota = counts / counts.sum() * total
    taken = np.clip(np.floor(quota), minimum, maximum).astype(np.int64)
    while taken.sum() < total:
        room = np.where(taken < maximum, quota - taken, -np.inf)
        taken[np.argmax(room)] += 1
    while taken.sum() > total:
        excess = np.where(taken > minimum, quota - taken, np.inf)
        taken[np.argmin(excess)] -= 1
    return taken


def stratified_take(labels: np.ndarray, per_class: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices holding `per_class[c]` random examples of each class c."""
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:count] for c, count in enumerate(per_class)]
    return np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)


def validation_split(
    labels: np.ndarray, num_classes: int, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, val) indices; every class keeps at least one training example, so a
    class with a single document (R52's 'platinum') stays in train."""
    counts = np.bincount(labels, minlength=num_classes)
    val_counts = allocate(
        counts, round(fraction * len(labels)), np.zeros_like(counts), np.maximum(counts - 1, 0)
    )
    val = stratified_take(labels, val_counts, np.random.default_rng([seed, 0]))
    return np.setdiff1d(np.arange(len(labels)), val), val


def subset(
    indices: np.ndarray,
    labels: np.ndarray,
    size: int | None,
    num_classes: int,
    seed: int,
    *,
    every_class: bool,
) -> np.ndarray:
    """A stratified subset of `indices` of `size` (all when None); with `every_class`, each class
    present keeps at least one example."""
    if size is None or size >= len(indices):
        return indices
    local = labels[indices]
    counts = np.bincount(local, minlength=num_classes)
    present = counts > 0
    floor = present.astype(np.int64) if every_class else np.zeros_like(counts)
    if floor.sum() > size:
        raise ConfigError(
            f"train_size: {size} cannot hold one example of each of the {int(present.sum())} "
            f"classes; use train_size >= {int(present.sum())}."
        )
    taken = stratified_take(local, allocate(counts, size, floor, counts), np.random.default_rng(seed))
    return indices[taken]


def make_splits(
    corpus: Corpus,
    *,
    val_fraction: float,
    split_seed: int,
    train_size: int | None = None,
    eval_size: int | None = None,
) -> SplitIndices:
    """The paper's protocol: a stratified, seeded validation split of train, then optional subsets.

    The split depends on `split_seed` only, so every loss and training seed sees the same data.
    """
    train, val = validation_split(corpus.train_labels, corpus.num_classes, val_fraction, split_seed)
    test = np.arange(len(corpus.test_labels))
    classes = corpus.num_classes
    return SplitIndices(
        train=subset(train, corpus.train_labels, train_size, classes, split_seed + 1, every_class=True),
        val=subset(val, corpus.train_labels, eval_size, classes, split_seed + 2, every_class=False),
        test=subset(test, corpus.test_labels, eval_size, classes, split_seed + 3, every_class=False),
    )
