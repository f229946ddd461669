"""A study spec: the YAML a user writes, validated into one frozen pydantic model, typed to its
leaves, before any trial. Every problem is reported at once, one line each, at its key path."""

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Discriminator, Tag, ValidationError, field_validator, model_validator

from common.errors import ConfigError, suggest
from common.validation import Integer, SpecModel, Text, problem, refuse
from common.validation_messages import join_path, problems
from study.sections import AblationSettings, CheckpointPolicy, Method, Resources, SearchSettings, registry_row
from study.settings import LossParams, TrainingSettings, loss_params_of, searchable
from trainables.losses import LOSSES

Kind = Literal["grid", "search", "protocol", "ablation"]
Tracker = Literal["tensorboard", "mlflow", "wandb"]
RowEntry = Annotated[
    Annotated[Annotated[Text, AfterValidator(registry_row)], Tag("name")] | Annotated[Method, Tag("row")],
    Discriminator(lambda entry: "name" if isinstance(entry, str) else "row"),
]
__all__ = ["CheckpointPolicy", "Method", "Resources", "SearchSettings", "StudySpec", "Tracker"]

CONDITIONS = ("sampler", "lr", "epochs", "early_stopping", "budget")


class StudySpec(SpecModel):
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

    name: Text
    kind: Kind
    datasets: tuple[Text, ...]
    losses: tuple[RowEntry, ...] = ("ce", "gloss")
    seeds: tuple[Integer, ...] = (0,)
    model: Text = "minilm"
    fidelity: Literal["full", "frozen"] = "frozen"
    training: TrainingSettings = TrainingSettings()
    loss_params: LossParams = LossParams()
    resources: Resources = Resources()
    storage: Text = "~/gloss-results"
    max_failures: Integer = 2
    max_concurrent: Integer | None = None
    """Trials of a phase live at once (running, or pending for a free node or the autoscaler);
    null: the phase's trial count. `gloss run --max-concurrent` overrides it. In a search it
    composes with `search.max_concurrent`, the cap per dataset x loss group (so TPE learns between
    its draws): at most min(max_concurrent, groups x search.max_concurrent) trials live at once."""
    checkpoint: CheckpointPolicy = CheckpointPolicy()
    search: SearchSettings = SearchSettings()
    ablation: AblationSettings = AblationSettings()
    tracking: tuple[Tracker, ...] = ()
    """Experiment trackers fed through Ray Tune's logger callbacks (study/tracking.py);
    `gloss run --tracking` overrides it."""
    differences: tuple[Text, ...] = ()
    description: Text = ""

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"'{name}' may hold only letters, digits, '-' and '_'.")
        return name

    @field_validator("datasets", "seeds")
    @classmethod
    def _not_empty(cls, values: tuple) -> tuple:
        if not values:
            raise ValueError("the list is empty; give at least one.")
        return values

    @field_validator("datasets", "seeds", "tracking")
    @classmethod
    def _each_once(cls, values: tuple) -> tuple:
        if len(set(values)) != len(values):
            raise ValueError(f"{list(values)} repeats an entry; list each once.")
        return values

    @field_validator("seeds")
    @classmethod
    def _no_negative_seed(cls, seeds: tuple[int, ...]) -> tuple[int, ...]:
        if any(seed < 0 for seed in seeds):
            raise ValueError(f"{list(seeds)} holds a negative seed; seeds are integers >= 0.")
        return seeds

    @field_validator("max_failures")
    @classmethod
    def _failures(cls, count: int) -> int:
        if count < 0:
            raise ValueError(f"{count} must be >= 0.")
        return count

    @field_validator("max_concurrent")
    @classmethod
    def _concurrent(cls, count: int | None) -> int | None:
        if count is not None and count < 1:
            raise ValueError(f"{count} must be at least 1, or null.")
        return count

    @model_validator(mode="after")
    def _consistent(self) -> "StudySpec":
        checks = (self._row_problems, self._named_rows, self._searched_names, self._search_seed_problems)
        refuse("StudySpec", [found for check in checks for found in check()])
        return self

    def _row_problems(self) -> list:
        """Rows are listed once."""
        rows = self.rows
        if not rows:
            return [problem(("losses",), "the list is empty; give at least one.")]
        if len(set(rows)) != len(rows):
            return [problem(("losses",), f"{list(rows)} repeats an entry; list each once.")]
        return []

    def _named_rows(self) -> list:
        """The search and the ablation name rows that exist (the ablation may name a registry
        loss instead)."""
        rows, found = self.rows, []
        for key, named in (("losses", self.search.losses or ()), ("space", self.search.space)):
            found += [
                problem(
                    ("search", key),
                    f"'{row}' is not a row of this study{suggest(row, rows)}; rows are {', '.join(rows)}.",
                )
                for row in named
                if row not in rows
            ]
        ablated = self.ablation.loss
        if ablated not in rows and ablated not in LOSSES:
            hint = suggest(ablated, [*rows, *LOSSES])
            found.append(
                problem(("ablation", "loss"), f"'{ablated}' is neither a row nor a registry loss{hint}.")
            )
        return found

    def _searched_names(self) -> list:
        """`search.space` overrides settings each row's loss has."""
        found = []
        for row, entries in self.search.space.items():
            known = searchable(self.method(row).loss) if row in self.rows else set(entries)
            found += [
                problem(
                    ("search", "space", row, name),
                    f"row '{row}' has no setting {name}{suggest(name, known)}.",
                )
                for name in entries
                if name not in known
            ]
        return found

    def _search_seed_problems(self) -> list:
        """Final results are measured on seeds the search never trained on, unless asked."""
        search = self.search
        if self.kind == "protocol" and search.seed in self.seeds and not search.reuse_seed:
            return [
                problem(
                    ("search", "seed"),
                    f"{search.seed} is also one of seeds {list(self.seeds)}; choose a seed outside them, "
                    "or set search.reuse_seed: true to reuse it on purpose.",
                )
            ]
        return []

    @property
    def methods(self) -> tuple[Method, ...]:
        """The rows, a bare name as the registry loss of that name."""
        return tuple(
            Method.model_construct(name=entry, loss=entry) if isinstance(entry, str) else entry
            for entry in self.losses
        )

    @property
    def rows(self) -> tuple[str, ...]:
        """The rows' names, in order."""
        return tuple(method.name for method in self.methods)

    def method(self, row: str) -> Method:
        """Row `row`, or (for an ablation of a loss not listed) the registry loss at its defaults."""
        return next((m for m in self.methods if m.name == row), None) or Method.model_construct(
            name=row, loss=row
        )

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


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a study spec, described from the models' docstrings, so an editor
    completes and checks keys as they are typed. Pydantic writes draft 2020-12; it names no
    `$schema`, since yaml-language-server (draft 7) warns on 2020-12 and reads this one whole but
    for the item types of [low, high] pairs (`prefixItems`)."""
    return {**StudySpec.model_json_schema(), "title": "gloss study spec"}


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
    """Validate a mapping into a StudySpec; every problem is one line of the ConfigError,
    `<source>: <key.path>: <sentence>`."""
    try:
        return StudySpec.model_validate(data)
    except ValidationError as error:
        raise ConfigError("\n".join(f"{source}: {line}" for line in problems(error, data))) from None


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
    written = spec.training.written()
    return set(written) | set(loss_params_of(spec.loss_params, method.loss)) | set(method.params)


def space_origin(spec: StudySpec, row: str, name: str) -> str:
    """The spec key that puts `name` into the row's search space, or '' for a default."""
    method = spec.method(row)
    if name in method.space and row in spec.rows:
        return join_path(f"losses.{spec.rows.index(row)}.space", name)
    if name in spec.search.space.get(row, {}):
        return join_path(f"search.space.{row}", name)
    return "search.lr" if name == "lr" and spec.search.lr is not None else ""
