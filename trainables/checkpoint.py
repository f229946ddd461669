"""Trainer state on disk, read back with torch.load(weights_only=True), and when to write it.

A checkpoint folder holds the record of the epoch it was written after (RECORD_FILE: small, so
the driver can read where a trial stands without loading a state), the trainer state
(STATE_FILE) and, at the end of a trial with save_embeddings, the best epoch's test embeddings
(EMBEDDINGS_FILE). A checkpoint without the state belongs to a trial that ended: its last epoch
wrote none, or the driver deleted it (study/checkpoints.py), and a trial restored from it has
nothing left to do."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

STATE_FILE = "trainer_state.pt"
# Seconds to save a GiB of trainer state and copy it to S3 (moto's server on 127.0.0.1, a lower
# bound for a real bucket; bench/results/checkpoint_time.json): the cost a trial assumes for its
# first checkpoint, before it has measured one.
WRITE_S_PER_GIB = 60.08 / 1.219  # a bert-base state in 60 s
EMBEDDINGS_FILE = "test_embeddings.npz"
RECORD_FILE = "record.json"


def save_state(state: dict, folder: str | Path) -> Path:
    """Write a trainer state dict into `folder`, a fresh temporary folder that Ray then copies
    into the trial's storage (so no rename or fsync here: 2.9 ms instead of 7.2 per epoch)."""
    path = Path(folder) / STATE_FILE
    torch.save(state, path)
    return path


def load_state(folder: str | Path) -> dict | None:
    """Read a trainer state dict (only tensors and plain containers are accepted); None when the
    checkpoint holds no state, i.e. the trial had ended."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def estimated_cost(state_bytes: int) -> float:
    """Seconds a first checkpoint of `state_bytes` is assumed to take (see WRITE_S_PER_GIB)."""
    return state_bytes / 2**30 * WRITE_S_PER_GIB


def save_record(record: dict, folder: str | Path) -> None:
    """Write the epoch's record beside its checkpoint: its epoch, status and scores (a trial's
    last checkpoint so carries its final record)."""
    (Path(folder) / RECORD_FILE).write_text(json.dumps(record, default=str))


def read_record(text: str) -> dict:
    """A checkpoint's record, as save_record wrote it."""
    return json.loads(text)


class Cadence:
    """When a trial checkpoints, at the end of an epoch: after every `every_epochs`-th epoch;
    after any epoch that ends `every_minutes` or more after the last checkpoint (or the trial's
    start); and after any epoch that ends once the last checkpoint's cost (scoring, writing and
    handing it to Tune, which uploads it before training goes on) is at most `max_share` of the
    time since it, so checkpoints take at most that share of a trial's time whatever the model,
    the epoch's length or the storage. Until one is measured, a checkpoint is assumed to cost
    `first_cost` (the trainable estimates it from the state's bytes at WRITE_S_PER_GIB): a trial
    of a minute's epochs on a fine-tuned encoder writes no state it would not use. None disables
    a rule."""

    def __init__(
        self,
        every_epochs: int | None,
        every_minutes: float | None,
        max_share: float | None = None,
        first_cost: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_epochs, self.every_minutes, self.max_share = every_epochs, every_minutes, max_share
        self.clock = clock  # the cost estimate (study/cost.py) runs the rule on a simulated clock
        self.last = clock()
        self.cost = first_cost

    def due(self, epoch: int) -> bool:
        """Whether the epoch that just ended should be checkpointed."""
        by_epoch = self.every_epochs is not None and epoch % self.every_epochs == 0
        waited = self.clock() - self.last
        by_time = self.every_minutes is not None and waited >= 60 * self.every_minutes
        by_share = self.max_share is not None and self.max_share * waited >= self.cost
        return by_epoch or by_time or by_share

    def saved(self, seconds: float) -> None:
        """A checkpoint that cost `seconds` was written now."""
        self.last, self.cost = self.clock(), seconds
