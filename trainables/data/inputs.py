"""Model inputs of one split, batched on demand: token ids (full fine-tuning) or cached pooled
embeddings (frozen fidelity). The training loop sees only `batch(indices)` and `labels`."""

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TokenInputs:
    """Unpadded token ids; each batch is padded to its own longest sequence."""

    ids: list[np.ndarray]
    labels: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.ids])

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        rows = [self.ids[i] for i in indices]
        width = max(len(row) for row in rows)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}


@dataclass
class FeatureInputs:
    """Fixed feature vectors (pooled embeddings of a frozen encoder)."""

    features: torch.Tensor
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> np.ndarray:
        return np.ones(len(self.labels), dtype=np.int64)

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return {"features": self.features[torch.from_numpy(np.asarray(indices))]}
