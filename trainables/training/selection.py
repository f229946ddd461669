"""Model selection on validation only: the best epoch so far, its record, and early stopping."""

import math
from dataclasses import asdict, dataclass, field


@dataclass
class BestEpoch:
    """Tracks the best validation score; `stop` once `patience` epochs pass without a gain."""

    patience: int | None
    score: float = -math.inf
    epoch: int = 0
    stale_epochs: int = 0
    record: dict = field(default_factory=dict)

    def improves(self, score: float) -> bool:
        """Whether `score` would be the new best (NaN never is)."""
        return not math.isnan(score) and score > self.score

    def update(self, epoch: int, score: float, record: dict) -> bool:
        """Register an epoch; True when it is the new best."""
        if self.improves(score):
            self.score, self.epoch, self.stale_epochs, self.record = score, epoch, 0, dict(record)
            return True
        self.stale_epochs += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.stale_epochs >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
