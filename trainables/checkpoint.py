"""Trainer state on disk: written atomically, read back with torch.load(weights_only=True)."""

from pathlib import Path

import torch

from trainables.atomic import atomic_path

STATE_FILE = "trainer_state.pt"


def save_state(state: dict, folder: str | Path) -> Path:
    """Write a trainer state dict into `folder`."""
    path = Path(folder) / STATE_FILE
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_state(folder: str | Path) -> dict:
    """Read a trainer state dict; only tensors and plain containers are accepted."""
    return torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
