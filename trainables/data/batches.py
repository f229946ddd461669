"""Batch orders for one epoch, a pure function of (seed, epoch), so a resumed trial replays them."""

import numpy as np

GROUP_WINDOW = 50  # batches per window within which examples are sorted by length


def length_sorted_chunks(lengths: np.ndarray, size: int) -> list[np.ndarray]:
    """Indices in chunks of `size` after sorting by length: how evaluation embeds a split, with
    little padding."""
    order = np.argsort(lengths, kind="stable")
    return [order[start : start + size] for start in range(0, len(order), size)]


class RandomBatches:
    """Shuffled batches of `batch_size` (the last one may be smaller). Given `lengths`, examples
    are sorted by length within random windows of GROUP_WINDOW batches and the batches shuffled,
    so each batch holds similar lengths and needs little padding."""

    def __init__(
        self, labels: np.ndarray, batch_size: int, seed: int, lengths: np.ndarray | None = None
    ) -> None:
        self.size, self.batch_size, self.seed, self.lengths = len(labels), batch_size, seed, lengths

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.size)
        if self.lengths is not None:
            window = self.batch_size * GROUP_WINDOW
            windows = np.split(order, range(window, self.size, window))
            order = np.concatenate([w[np.argsort(-self.lengths[w], kind="stable")] for w in windows])
        batches = [order[i : i + self.batch_size] for i in range(0, self.size, self.batch_size)]
        if self.lengths is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches


class ClassAwareBatches:
    """Batches of a few classes with `per_class` examples each, so classes repeat within a batch.

    Classes are drawn in proportion to their size, which keeps the class prior of the data;
    examples of a class are used in a shuffled cycle, so each appears about once per epoch. A
    class never gives more examples than it has, so a batch of tiny classes can be smaller.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, per_class: int, seed: int) -> None:
        self.labels, self.batch_size, self.seed = labels, batch_size, seed
        self.classes = np.flatnonzero(np.bincount(labels))
        self.classes_per_batch = max(1, min(len(self.classes), batch_size // max(per_class, 1)))
        counts = np.bincount(labels)[self.classes]
        self.class_weights = counts / counts.sum()

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        pools = {c: _Cycle(np.flatnonzero(self.labels == c), rng) for c in self.classes}
        return [self._batch(rng, pools) for _ in range(len(self))]

    def _batch(self, rng: np.random.Generator, pools: dict) -> np.ndarray:
        chosen = rng.choice(self.classes, size=self.classes_per_batch, replace=False, p=self.class_weights)
        shares = np.full(len(chosen), self.batch_size // len(chosen))
        shares[: self.batch_size - shares.sum()] += 1
        shares = np.minimum(shares, [len(pools[c].members) for c in chosen])
        return np.concatenate([pools[c].take(n) for c, n in zip(chosen, shares, strict=True)])


class _Cycle:
    """Draw from a class's examples without replacement, reshuffling when exhausted; one draw
    never repeats an example."""

    def __init__(self, members: np.ndarray, rng: np.random.Generator) -> None:
        self.members, self.rng, self.queue = members, rng, np.array([], dtype=np.int64)

    def take(self, count: int) -> np.ndarray:
        if len(self.queue) < count:
            fresh = self.rng.permutation(self.members)
            pending = np.isin(fresh, self.queue)
            self.queue = np.concatenate([self.queue, fresh[~pending], fresh[pending]])
        taken, self.queue = self.queue[:count], self.queue[count:]
        return taken
