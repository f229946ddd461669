"""Optimiser and learning-rate schedule (warm-up, then constant, linear, cosine or the paper's
x0.1 step), stepped once per optimiser step."""

import math

import torch

from trainables.config import TrialConfig


def build_optimizer(parameters, config: TrialConfig) -> torch.optim.Optimizer:
    """Adam or AdamW at the configured learning rate and weight decay, with PyTorch's fused kernel:
    one pass over all parameters instead of a loop of small ops per parameter (on a CPU PyTorch
    takes that loop by default). The same update, and the Hugging Face Trainer's default."""
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(parameters, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True)


class LearningRateFactor:
    """The multiplier of the base learning rate at a given optimiser step."""

    def __init__(self, config: TrialConfig, steps_per_epoch: int) -> None:
        self.kind = config.schedule
        self.total = max(1, config.epochs * steps_per_epoch)
        self.warmup = math.ceil(config.warmup_ratio * self.total)
        self.step_at = config.step_epoch * steps_per_epoch

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        if self.kind == "linear":
            return max(0.0, 1.0 - progress)
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        if self.kind == "step":
            return 0.1 if step >= self.step_at else 1.0
        return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrialConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR driven by LearningRateFactor."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LearningRateFactor(config, steps_per_epoch))
