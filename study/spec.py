"""A study spec: the YAML a user writes, validated into one frozen dataclass before any trial."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from common.errors import ConfigError
from common.typed import from_mapping, join_path, suggest

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
class Method:
    """One row of the comparison: a registry loss (`loss`, default the row's `name`) at fixed
    `params` (its own parameters and any trial setting; never searched), with `space` overriding
    the loss's default search distributions (null removes one)."""

    name: str
    loss: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[\w+.\-]+", self.name):
            raise ConfigError(
                f"name: '{self.name}' may hold only letters, digits and '_', '-', '+', '.', e.g. gloss_o+ce."
            )
        if not self.loss:
            object.__setattr__(self, "loss", self.name)


def parse_method(entry: Any, where: str) -> Method:
    """A row from a `losses` entry: a registry name, or {name, loss, params, space}."""
    if not isinstance(entry, str | dict):
        raise ConfigError(
            f"{where}: expected a loss name or a mapping {{name, loss, params, space}}, got {entry!r}."
        )
    try:
        return from_mapping(Method, {"name": entry} if isinstance(entry, str) else entry, where)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(where) else f"{where}.{message}") from None


@dataclass(frozen=True)
class SearchSettings:
    """Optuna through Ray Tune, one independent search per dataset x row, each with `trials`.

    `lr` is the learning-rate distribution every row searches (default: the fidelity's range;
    `training.lr` fixes it instead). `seed` is the seed search trials train on and the Optuna
    samplers derive theirs from; in a protocol it defaults to one above the largest of `seeds`
    and may name one of them only with `reuse_seed: true` (the report then says so); in a search
    alone it defaults to the first of `seeds`."""

    trials: int = 16
    losses: tuple[str, ...] | None = None
    sampler: Literal["tpe", "random"] = "tpe"
    max_concurrent: int = 2
    scheduler: Literal["none", "asha"] = "none"
    grace_period: int = 2
    reduction_factor: int = 3
    seed: int | None = None
    reuse_seed: bool = False
    lr: dict[str, Any] | None = None
    space: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("trials", "max_concurrent", "grace_period"):
            if getattr(self, name) < 1:
                raise ConfigError(f"search.{name}: {getattr(self, name)} must be at least 1.")
        if self.reduction_factor < 2:
            raise ConfigError(f"search.reduction_factor: {self.reduction_factor} must be at least 2.")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"search.seed: {self.seed} is negative; seeds are integers >= 0.")


@dataclass(frozen=True)
class CheckpointPolicy:
    """How trials checkpoint, and what of it storage keeps.

    A trial checkpoints at the end of an epoch: by default (`max_share` 0.05) once its last
    checkpoint's cost is at most 5% of the time since it, so checkpointing takes at most 5% of a
    trial's time whatever the model, epoch length or storage (a bert-base state on object storage
    is written every few minutes, a frozen-fidelity head's every epoch); also after every
    `every_epochs`-th epoch and after any epoch that ends `every_minutes` or more after its last
    checkpoint (each may be null, not all three). A trial restarted after a crash redoes the
    epochs since its last checkpoint (their records then appear twice; the analysis reads each
    epoch once). With `optimizer: false` a state holds the weights without Adam's moments (a
    third of the bytes of a fine-tuned encoder's state), and a restarted trial starts the
    moments afresh. Tune keeps the newest `keep` checkpoints per
    trial: 2 by default, since a driver killed between a new checkpoint and Tune's next snapshot of
    its experiment resumes from the older one, which must still exist. With `delete_finished`, a
    trial's last epoch writes no trainer state and, once the trial
    ends (finished, or stopped by ASHA), the trainer state (weights, optimizer moments) is deleted
    from its checkpoints in storage: its records keep the best epoch's metrics, and test embeddings
    saved with `training.save_embeddings` stay. Trials that ended in an error keep their state, so
    `--resume` continues them."""

    every_epochs: int | None = None
    every_minutes: float | None = None
    max_share: float | None = 0.05
    keep: int = 2
    delete_finished: bool = True
    optimizer: bool = True

    def __post_init__(self) -> None:
        if self.every_epochs is not None and self.every_epochs < 1:
            raise ConfigError(f"checkpoint.every_epochs: {self.every_epochs} must be at least 1, or null.")
        if self.every_minutes is not None and self.every_minutes <= 0:
            raise ConfigError(f"checkpoint.every_minutes: {self.every_minutes} must be positive, or null.")
        if self.max_share is not None and not 0 < self.max_share < 1:
            raise ConfigError(
                f"checkpoint.max_share: {self.max_share} must be in (0, 1), e.g. 0.05, or null."
            )
        if self.every_epochs is None and self.every_minutes is None and self.max_share is None:
            raise ConfigError(
                "checkpoint: every_epochs, every_minutes and max_share are all null; set one, or a "
                "restarted trial starts over."
            )
        if self.keep < 1:
            raise ConfigError(f"checkpoint.keep: {self.keep} must be at least 1.")

    def trial_settings(self) -> dict[str, Any]:
        """The TrialConfig fields that carry this policy to every trial."""
        return {
            "checkpoint_every_epochs": self.every_epochs,
            "checkpoint_every_minutes": self.every_minutes,
            "checkpoint_max_share": self.max_share,
            "checkpoint_final_state": not self.delete_finished,
            "checkpoint_optimizer": self.optimizer,
        }


@dataclass(frozen=True)
class AblationSettings:
    """One factor at a time around the base configuration of row `loss` (a row of the study, or
    a registry loss at its defaults)."""

    loss: str = "gloss"
    factors: dict[str, tuple] = field(default_factory=dict)


CONDITIONS = ("sampler", "lr", "epochs", "early_stopping", "budget")


@dataclass(frozen=True)
class StudySpec:
    """What to run: datasets x rows (`losses`) x seeds at one fidelity, and how (the kind).

    A `losses` entry is a registry loss name (the row is named after it) or a mapping
    {name, loss, params, space} (see Method). One study is one comparison: every row gets the
    same conditions, and the planner refuses a spec whose rows differ in one unless
    `differences` lists it. The conditions are
      sampler         training.batch_sampler, per_class, group_by_length (random for every row
                      unless the study sets class_aware; at full fidelity random batches are
                      grouped by length)
      lr              the learning-rate distribution searched (search.lr, search.space.ROW.lr)
                      or the fixed learning rate
      epochs          training.epochs
      early_stopping  training.patience and monitor (the rule: `auto` monitors validation
                      macro-F1, or silhouette for a standalone row)
      budget          search trials per row (a protocol row left out of search.losses has none)
    and every other trial setting under its own name (batch_size, class_weighting, schedule, ...).
    """

    name: str
    kind: Kind
    datasets: tuple[str, ...]
    losses: tuple[str | dict[str, Any], ...] = ("ce", "gloss")
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
    differences: tuple[str, ...] = ()
    description: str = ""
    methods: tuple[Method, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"name: '{self.name}' may hold only letters, digits, '-' and '_'.")
        methods = tuple(parse_method(entry, f"losses.{i}") for i, entry in enumerate(self.losses))
        object.__setattr__(self, "methods", methods)
        for key, values in (("datasets", self.datasets), ("losses", self.rows), ("seeds", self.seeds)):
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
        for key, named in (("search.losses", self.search.losses or ()), ("search.space", self.search.space)):
            for row in named:
                if row not in self.rows:
                    raise ConfigError(
                        f"{key}: '{row}' is not a row of this study{suggest(row, self.rows)}; rows are "
                        f"{', '.join(self.rows)}."
                    )
        self._check_search_seed()

    def _check_search_seed(self) -> None:
        """Final results are measured on seeds the search never trained on, unless asked."""
        search = self.search
        if self.kind == "protocol" and search.seed in self.seeds and not search.reuse_seed:
            raise ConfigError(
                f"search.seed: {search.seed} is also one of seeds {list(self.seeds)}; choose a seed "
                "outside them, or set search.reuse_seed: true to reuse it on purpose."
            )

    @property
    def rows(self) -> tuple[str, ...]:
        """The rows' names, in order."""
        return tuple(method.name for method in self.methods)

    def method(self, row: str) -> Method:
        """Row `row`, or (for an ablation of a loss not listed) the registry loss at its defaults."""
        return next((m for m in self.methods if m.name == row), None) or Method(row)

    @property
    def searched_losses(self) -> tuple[str, ...]:
        """The rows a search tunes (every row unless `search.losses` narrows them)."""
        return self.search.losses or self.rows

    @property
    def search_seed(self) -> int:
        """The seed search trials train on (see SearchSettings)."""
        if self.search.seed is not None:
            return self.search.seed
        return max(self.seeds) + 1 if self.kind == "protocol" else self.seeds[0]


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


def where_in_spec(spec: StudySpec, row: str, trial_key: str) -> str:
    """Translate a trial-config key path of row `row` to the spec key a user edits."""
    method = spec.method(row)
    name = trial_key.removeprefix("loss_params.")
    if trial_key == "loss" and row not in spec.rows:
        return "ablation.loss"
    if row in spec.rows and (name in method.params or trial_key == "loss"):
        where = f"losses.{spec.rows.index(row)}"
        return where if trial_key == "loss" else join_path(f"{where}.params", name)
    if trial_key.startswith("loss_params."):
        return join_path(f"loss_params.{method.loss}", name)
    return join_path("training", trial_key)


def fixed_keys(spec: StudySpec, row: str) -> set[str]:
    """The trial settings and loss parameters the spec fixes for `row`: never searched."""
    method = spec.method(row)
    return set(spec.training) | set(spec.loss_params.get(method.loss, {})) | set(method.params)


def space_origin(spec: StudySpec, row: str, name: str) -> str:
    """The spec key that puts `name` into the row's search space, or '' for a default."""
    method = spec.method(row)
    if name in method.space and row in spec.rows:
        return join_path(f"losses.{spec.rows.index(row)}.space", name)
    if name in spec.search.space.get(row, {}):
        return join_path(f"search.space.{row}", name)
    return "search.lr" if name == "lr" and spec.search.lr is not None else ""
