"""A study spec: the YAML a user writes, validated into one frozen dataclass before any trial."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from trainables.errors import ConfigError
from trainables.typed import from_mapping, join_path

Kind = Literal["grid", "search", "protocol", "ablation"]
Tracker = Literal["tensorboard", "mlflow", "wandb"]


@dataclass(frozen=True)
class Resources:
    """Per trial; fractions of a GPU share one card (without memory isolation)."""

    cpu: float = 1.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        if self.cpu <= 0 or self.gpu < 0:
            raise ConfigError(f"resources: cpu must be > 0 and gpu >= 0, got cpu={self.cpu}, gpu={self.gpu}.")


@dataclass(frozen=True)
class SearchSettings:
    """Optuna through Ray Tune, one independent search per dataset x loss."""

    trials: int = 16
    losses: tuple[str, ...] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    max_concurrent: int = 2
    scheduler: Literal["none", "asha"] = "none"
    grace_period: int = 2
    reduction_factor: int = 3
    seed: int = 0
    space: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("trials", "max_concurrent", "grace_period"):
            if getattr(self, name) < 1:
                raise ConfigError(f"search.{name}: {getattr(self, name)} must be at least 1.")
        if self.reduction_factor < 2:
            raise ConfigError(f"search.reduction_factor: {self.reduction_factor} must be at least 2.")


@dataclass(frozen=True)
class CheckpointPolicy:
    """How trials checkpoint, and what of it storage keeps.

    A trial checkpoints after every `every_epochs`-th epoch, and after any epoch that ends
    `every_minutes` or more after its last checkpoint (either may be null, not both); a trial
    restarted after a crash redoes the epochs since its last checkpoint (up to every_epochs - 1
    finished ones, whose records then appear twice). Tune keeps the newest `keep` checkpoints per
    trial. With `delete_finished`, a trial's last epoch writes no trainer state and, once the trial
    ends (finished, or stopped by ASHA), the trainer state (weights, optimizer moments) is deleted
    from its checkpoints in storage: its records keep the best epoch's metrics, and test embeddings
    saved with `training.save_embeddings` stay. Trials that ended in an error keep their state, so
    `--resume` continues them."""

    every_epochs: int | None = 1
    every_minutes: float | None = None
    keep: int = 1
    delete_finished: bool = True

    def __post_init__(self) -> None:
        if self.every_epochs is not None and self.every_epochs < 1:
            raise ConfigError(f"checkpoint.every_epochs: {self.every_epochs} must be at least 1, or null.")
        if self.every_minutes is not None and self.every_minutes <= 0:
            raise ConfigError(f"checkpoint.every_minutes: {self.every_minutes} must be positive, or null.")
        if self.every_epochs is None and self.every_minutes is None:
            raise ConfigError(
                "checkpoint: every_epochs and every_minutes are both null; set one, or a restarted "
                "trial starts over."
            )
        if self.keep < 1:
            raise ConfigError(f"checkpoint.keep: {self.keep} must be at least 1.")

    def trial_settings(self) -> dict[str, Any]:
        """The TrialConfig fields that carry this policy to every trial."""
        return {
            "checkpoint_every_epochs": self.every_epochs,
            "checkpoint_every_minutes": self.every_minutes,
            "checkpoint_final_state": not self.delete_finished,
        }


@dataclass(frozen=True)
class AblationSettings:
    """One factor at a time around the base configuration of `loss`."""

    loss: str = "gloss"
    factors: dict[str, tuple] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    """What to run: datasets x losses x seeds at one fidelity, and how (the kind)."""

    name: str
    kind: Kind
    datasets: tuple[str, ...]
    losses: tuple[str, ...] = ("ce", "gloss")
    seeds: tuple[int, ...] = (0,)
    model: str = "minilm"
    fidelity: Literal["full", "frozen"] = "frozen"
    training: dict[str, Any] = field(default_factory=dict)
    loss_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    storage: str = "~/gloss-results"
    max_failures: int = 2
    max_concurrent: int | None = None
    """Trials of a phase live at once (running, or pending for a free node or the autoscaler);
    null: the phase's trial count. `gloss run --max-concurrent` overrides it. In a search it
    composes with `search.max_concurrent`, the cap per dataset x loss group (so TPE learns between
    its draws): at most min(max_concurrent, groups x search.max_concurrent) trials live at once."""
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    search: SearchSettings = field(default_factory=SearchSettings)
    ablation: AblationSettings = field(default_factory=AblationSettings)
    tracking: tuple[Tracker, ...] = ()
    """Experiment trackers fed through Ray Tune's logger callbacks (study/tracking.py);
    `gloss run --tracking` overrides it."""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"name: '{self.name}' may hold only letters, digits, '-' and '_'.")
        for key in ("datasets", "losses", "seeds"):
            values = getattr(self, key)
            if not values:
                raise ConfigError(f"{key}: the list is empty; give at least one.")
            if len(set(values)) != len(values):
                raise ConfigError(f"{key}: {list(values)} repeats an entry; list each once.")
        if len(set(self.tracking)) != len(self.tracking):
            raise ConfigError(f"tracking: {list(self.tracking)} repeats an entry; list each once.")
        if any(seed < 0 for seed in self.seeds):
            raise ConfigError(f"seeds: {list(self.seeds)} holds a negative seed; seeds are integers >= 0.")
        if self.max_failures < 0:
            raise ConfigError(f"max_failures: {self.max_failures} must be >= 0.")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"max_concurrent: {self.max_concurrent} must be at least 1, or null.")
        for key, value in self.checkpoint.trial_settings().items():
            if key in self.training and self.training[key] != value:
                raise ConfigError(
                    f"training.{key}: set it through the checkpoint section, e.g. "
                    "checkpoint: {every_epochs: 2}."
                )

    @property
    def searched_losses(self) -> tuple[str, ...]:
        """The losses a search tunes (all of the study's unless `search.losses` narrows them)."""
        return self.search.losses or self.losses


def parse_yaml(text: str, source: str) -> dict:
    """Parse YAML safely; a syntax error names the line and column."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}; fix the YAML syntax there.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a study spec is a mapping of keys such as name, kind, datasets.")
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `--set key.path=value` overrides (values parsed as YAML) to a spec mapping."""
    data = dict(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {override}: write key=value, e.g. --set training.epochs=5.")
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[leaf] = yaml.safe_load(raw)
    return data


def spec_from_mapping(data: dict, source: str) -> StudySpec:
    """Validate a mapping into a StudySpec; errors are prefixed with the source."""
    try:
        return from_mapping(StudySpec, data)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_spec_file(path: Path, overrides: list[str] = ()) -> StudySpec:
    """Read, override and validate a spec file."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror}); give an existing spec file.") from None
    return spec_from_mapping(apply_overrides(parse_yaml(text, str(path)), list(overrides)), str(path))


def where_in_spec(trial_key: str, loss: str) -> str:
    """Translate a trial-config key path to the spec key a user edits."""
    if trial_key.startswith("loss_params."):
        return join_path(f"loss_params.{loss}", trial_key.removeprefix("loss_params."))
    return join_path("training", trial_key)
