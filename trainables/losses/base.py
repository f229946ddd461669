"""What every auxiliary loss shares: its declared needs, its context, its result and its weight."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from common.errors import ConfigError


@dataclass(frozen=True)
class Needs:
    """What a loss asks of the training loop, so the loop never has to know loss names."""

    class_repeats: bool = False  # batches should hold several examples of each class present
    trains_body: bool = True  # False: the encoder and projection stay as pre-trained; only the head learns


@dataclass(frozen=True)
class LossContext:
    """Facts about the training data a loss may use when it is built."""

    num_classes: int
    class_counts: tuple[int, ...]
    pretrained_embeddings: Callable[[], torch.Tensor] | None = None


@dataclass
class LossResult:
    """A loss value (a scalar with its graph) and per-batch statistics worth logging."""

    value: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


LAMBDA_SPACE = {"uniform": [0.3, 0.95]}
"""The default search range of `lam`, the auxiliary loss's weight against cross-entropy, shared by
every auxiliary loss (see LossEntry.space)."""


@dataclass(frozen=True)
class CEParams:
    """Cross-entropy alone has no parameters of its own."""

    lam: ClassVar[float] = 0.0

    def check_batch_size(self, batch_size: int) -> None:
        """Cross-entropy works with any batch."""


@dataclass(frozen=True)
class ControlParams:
    """The control row trains no body; `lam` still picks its protocol: 0 reads the untrained
    embeddings with the trained head (integrated), 1 with the linear probe (standalone)."""

    lam: float = 0.0

    def __post_init__(self) -> None:
        if self.lam not in (0.0, 1.0):
            raise ConfigError(
                f"loss_params.lam: {self.lam}; the control row 'none' takes 0 (head) or 1 (probe)."
            )

    def check_batch_size(self, batch_size: int) -> None:
        """Any batch will do: nothing is trained but the head."""


@dataclass(frozen=True)
class AuxParams:
    """Parameters shared by every auxiliary loss: `lam` weighs it against cross-entropy."""

    lam: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"loss_params.lam: {self.lam} is outside [0, 1]; 1 means standalone.")

    def check_batch_size(self, batch_size: int) -> None:
        """Reject parameters that cannot work with this batch size (none by default)."""


class AuxLoss(nn.Module):
    """An auxiliary loss on pooled embeddings: forward(embeddings [B, D], labels [B])."""

    needs: ClassVar[Needs] = Needs()

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossResult:
        raise NotImplementedError


def balanced_class_weights(counts: tuple[int, ...]) -> torch.Tensor:
    """N / (C * n_c) per class, as scikit-learn's 'balanced' (empty classes count as one)."""
    sizes = torch.tensor(counts, dtype=torch.float64).clamp_min(1)
    return sizes.sum() / (len(sizes) * sizes)


def zero_loss(embeddings: torch.Tensor, **stats: float) -> LossResult:
    """A zero that keeps the autograd graph intact, for batches that carry no signal."""
    return LossResult(embeddings.sum() * 0.0, {"degenerate": 1.0, **stats})
