"""The typed trial configuration. Ray's untyped config dict becomes a TrialConfig here, in
`TrialConfig.from_dict`, and nowhere else."""

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from common.errors import ConfigError
from common.validation import model_of
from common.validation_messages import problems
from trainables.losses.base import AuxParams, CEParams
from trainables.losses.registry import loss_entry

DEFAULT_LR = {"full": 2e-5, "frozen": 1e-3}


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs; `loss_params` is the chosen loss's own typed parameters,
    `method` the name of the study's row the trial belongs to (default: the loss's name), and
    `tags` are free labels copied into every record (an ablation's factor and level, a final
    run's `unsearched`)."""

    dataset: str
    loss: str = "ce"
    method: str = ""
    loss_params: AuxParams | CEParams = field(default_factory=CEParams)
    seed: int = 0
    model: str = "minilm"
    fidelity: Literal["full", "frozen"] = "frozen"
    pooling: Literal["cls", "mean"] = "mean"
    max_length: int = 128
    batch_size: int = 32
    epochs: int = 20
    lr: float | None = None
    weight_decay: float = 0.0
    optimizer: Literal["adam", "adamw"] = "adamw"
    schedule: Literal["constant", "linear", "cosine", "step"] = "linear"
    warmup_ratio: float = 0.06
    step_epoch: int = 30
    max_grad_norm: float | None = 1.0
    patience: int | None = 10
    monitor: Literal["auto", "val_macro_f1", "val_accuracy", "val_knn_macro_f1", "val_silhouette"] = "auto"
    val_fraction: float = 0.1
    split_seed: int = 0
    train_size: int | None = None
    eval_size: int | None = None
    batch_sampler: Literal["random", "class_aware"] = "random"
    group_by_length: bool = True
    per_class: int = 4
    class_weighting: Literal["none", "balanced"] = "none"
    projection_dim: int = 512
    dropout: float = 0.1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    encoder_passes: Literal[1, 2] = 1
    # torch.compile the model's forward (dynamic shapes: length-grouped batches vary in length);
    # minutes of compilation first, worth it for long GPU trials only (bench/gpu.py measures it).
    compile: bool = False
    save_embeddings: bool = False
    # Test metrics at every epoch (test convergence curves); by default the test split is embedded
    # only at epochs that become the best on validation, the only ones whose test metrics count.
    test_curves: bool = False
    silhouette: Literal["euclidean", "cosine"] = "euclidean"
    probe: Literal["linear_adam", "logistic_regression"] = "linear_adam"
    # When a trial checkpoints (the study's `checkpoint` section sets these): every N epochs, once
    # M minutes passed since its last checkpoint, or once the last checkpoint's cost is at most
    # `max_share` of the time since; whether its last epoch saves its state; whether a state
    # holds the optimizer's moments (else a restarted trial starts them afresh).
    checkpoint_every_epochs: int | None = None
    checkpoint_every_minutes: float | None = None
    checkpoint_max_share: float | None = 0.05
    checkpoint_final_state: bool = True
    checkpoint_optimizer: bool = True
    data_dir: str | None = None
    study: str = ""
    phase: str = ""
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method or self.loss)
        positive = {"max_length": 1, "epochs": 1, "batch_size": 2, "per_class": 1, "projection_dim": 1}
        for name, least in positive.items():
            if getattr(self, name) < least:
                raise ConfigError(f"{name}: {getattr(self, name)} is below the minimum {least}.")
        for name in ("seed", "split_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: {getattr(self, name)} is negative; seeds are integers >= 0.")
        self._check_ranges()
        self.loss_params.check_batch_size(self.batch_size)

    def _check_ranges(self) -> None:
        checks = [
            ("lr", self.lr is None or self.lr > 0, "must be positive, e.g. 2e-5"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "must be in [0, 1)"),
            ("val_fraction", 0 < self.val_fraction < 1, "must be in (0, 1), e.g. 0.1"),
            ("dropout", 0 <= self.dropout < 1, "must be in [0, 1)"),
            ("patience", self.patience is None or self.patience >= 1, "must be >= 1, or null"),
            (
                "max_grad_norm",
                self.max_grad_norm is None or self.max_grad_norm > 0,
                "must be positive, or null",
            ),
            ("train_size", self.train_size is None or self.train_size >= 2, "must be >= 2, or null"),
            ("eval_size", self.eval_size is None or self.eval_size >= 2, "must be >= 2, or null"),
            ("step_epoch", self.step_epoch >= 1, "must be >= 1"),
            (
                "checkpoint_every_epochs",
                self.checkpoint_every_epochs is None or self.checkpoint_every_epochs >= 1,
                "must be >= 1, or null",
            ),
            (
                "checkpoint_every_minutes",
                self.checkpoint_every_minutes is None or self.checkpoint_every_minutes > 0,
                "must be positive, or null",
            ),
            (
                "checkpoint_max_share",
                self.checkpoint_max_share is None or 0 < self.checkpoint_max_share < 1,
                "must be in (0, 1), or null",
            ),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ConfigError(f"{name}: {getattr(self, name)} {rule}.")

    @property
    def learning_rate(self) -> float:
        """`lr`, or the fidelity's default (full fine-tuning 2e-5, frozen head 1e-3)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.fidelity]

    @property
    def groups_by_length(self) -> bool:
        """Whether random batches are sorted by token length within windows (full fidelity with
        `group_by_length`); frozen trials batch fixed-size vectors and class-aware batches are
        drawn by class, so neither is grouped."""
        return self.batch_sampler == "random" and self.group_by_length and self.fidelity == "full"

    @property
    def standalone(self) -> bool:
        """lam = 1: the encoder learns from the auxiliary loss alone; a probe classifies."""
        return self.loss_params.lam >= 1.0

    @property
    def monitor_metric(self) -> str:
        """The validation metric for model selection: macro-F1 of the head, or in standalone
        mode (no trained head) the silhouette of validation embeddings, as in the paper."""
        if self.monitor != "auto":
            return self.monitor
        return "val_silhouette" if self.standalone else "val_macro_f1"

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "TrialConfig":
        """The one conversion from Ray's (or a spec's) untyped dict, with precise errors (the
        first, as `key.path: sentence`)."""
        config = dict(config)
        if "dataset" not in config:
            raise ConfigError("dataset: required key is missing; name a dataset such as r8.")
        loss = config.get("loss", "ce")
        entry = loss_entry(loss if isinstance(loss, str) else repr(loss))
        written = config.pop("loss_params", None) or {}
        params = entry.params(**typed(params_model(entry.params), written, "loss_params."))
        return cls(**typed(TRIAL_MODEL, config), loss_params=params)

    def with_values(self, values: Mapping[str, Any]) -> "TrialConfig":
        """This config with `values` set, each where its name belongs: a loss parameter (sigma,
        lam, ...) or a trial setting (lr, ...). How a row's params, an ablation level and a
        searcher's draw are applied; checked as `from_dict` checks."""
        own = {field.name for field in dataclasses.fields(self.loss_params)}
        settings = {name: value for name, value in values.items() if name not in own}
        params = {name: value for name, value in values.items() if name in own}
        merged = {**self.to_dict(), **settings}
        merged["loss_params"] = {**merged["loss_params"], **params}
        return TrialConfig.from_dict(merged)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (loss_params nested) that `from_dict` turns back into an equal config."""
        return dataclasses.asdict(self)


TRIAL_MODEL = model_of(TrialConfig, exclude={"loss_params"}, name="TrialSettings")


@functools.cache
def params_model(params: type) -> type:
    """The pydantic model of a loss's parameter dataclass (types checked; values by the class)."""
    return model_of(params)


def typed(model: type, data: Any, where: str = "") -> dict[str, Any]:
    """`data` checked and coerced against `model`, as keyword arguments; a ConfigError names the
    first problem, its key path under `where`."""
    try:
        return dict(model.model_validate(data))
    except ValidationError as error:
        raise ConfigError(where + problems(error, data)[0]) from None
