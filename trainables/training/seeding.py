"""Seeds: one hashed seed per (trial seed, epoch), so a resumed trial replays the same randomness
without storing generator states."""

import hashlib
import random

import numpy as np
import torch


def seed_hash(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts."""
    return int(hashlib.md5(repr(parts).encode()).hexdigest(), 16) % (2**31)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
