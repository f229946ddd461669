"""Growing a study: `gloss run SPEC --resume` compared with the spec the study was started with.

A study grows by seeds, datasets and rows (`losses`): each growth is a stage whose new trials run
as Tune experiments of their own (`grid+1`, `search+1`, `final+1`, ...) beside the earlier ones,
which are never rerun; the records say the same phase (`grid`, `final`), so the analysis sees one
study. Anything else that changed (a learning rate, the epochs, a row's parameters, a seed
removed) is refused before any compute, naming each changed key with its old and new value:
results trained under two settings would be read as one. Settings that change how a study runs,
not what it measures, may differ between runs (OPERATIONAL)."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError
from study.spec import StudySpec, spec_from_mapping

OPERATIONAL = {
    "storage",
    "max_concurrent",
    "search.max_concurrent",
    "tracking",
    "resources",
    "max_failures",
    "checkpoint",
    "description",
    "training.data_dir",
}
GROWING = ("seeds", "datasets", "losses")


@dataclass(frozen=True)
class Stage:
    """What a study covered after its start (stage 0) or after one growth: its seeds, datasets
    and `losses` entries; the trials of stage i that stage i - 1 did not cover run as experiments
    named `<phase>+i`."""

    seeds: tuple[int, ...]
    datasets: tuple[str, ...]
    losses: tuple[Any, ...]

    def spec(self, spec: StudySpec) -> StudySpec:
        """`spec` narrowed to this stage (every other setting is the same in every stage)."""
        narrowed = {**plain(spec), "seeds": self.seeds, "datasets": self.datasets, "losses": self.losses}
        return spec_from_mapping(narrowed, "study.json")

    def added_to(self, before: "Stage") -> dict[str, list]:
        """What this stage adds to `before`: {'seeds': [...], 'datasets': [...], 'losses': [...]}."""
        rows = {row_name(entry) for entry in before.losses}
        added = {
            "seeds": [s for s in self.seeds if s not in before.seeds],
            "datasets": [d for d in self.datasets if d not in before.datasets],
            "losses": [entry for entry in self.losses if row_name(entry) not in rows],
        }
        return {key: values for key, values in added.items() if values}


def row_name(entry: Any) -> str:
    """A `losses` entry's row name: the registry name, or the mapping's `name` (else its loss)."""
    return entry if isinstance(entry, str) else entry.get("name") or entry["loss"]


def plain(spec: StudySpec) -> dict[str, Any]:
    """The spec as study.json records it: JSON values (lists, not tuples); training settings, loss
    parameters, rows and distributions as the user wrote them (study/growth compares them)."""
    return spec.model_dump(mode="json")


def stage_of(data: dict[str, Any]) -> Stage:
    return Stage(tuple(data["seeds"]), tuple(data["datasets"]), tuple(data["losses"]))


def stages(record: dict[str, Any]) -> list[Stage]:
    """The study's stages from its study.json: the spec it started with, then each growth."""
    found = [stage_of(record["spec"])]
    for growth in record.get("growth", []):
        found.append(extended(found[-1], growth["added"]))
    return found


def recorded_stages(record: dict[str, Any], stage: Stage | None) -> list[Stage]:
    """The stages study.json will hold once this run's growth `stage` (if any) is written."""
    found = stages(record)
    return [*found, extended(found[-1], stage.added_to(found[-1]))] if stage is not None else found


def extended(stage: Stage, added: dict[str, list]) -> Stage:
    """`stage` with a growth's added seeds, datasets and rows after its own."""
    return Stage(
        stage.seeds + tuple(added.get("seeds", ())),
        stage.datasets + tuple(added.get("datasets", ())),
        stage.losses + tuple(added.get("losses", ())),
    )


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and scalars are leaves."""
    if not isinstance(data, dict) or not data:
        return {prefix: data}
    leaves: dict[str, Any] = {}
    for name, item in data.items():
        leaves |= flat(item, f"{prefix}.{name}" if prefix else str(name))
    return leaves


def changed_keys(started: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """'key old -> new' for every setting that differs and may not (neither operational nor
    growing), and for seeds, datasets or rows that were removed or redefined."""
    old, new = flat(started), flat(given)
    keys = sorted(key for key in old.keys() | new.keys() if not skipped(key) and old.get(key) != new.get(key))
    changes = [f"{key} {show(old.get(key))} -> {show(new.get(key))}" for key in keys]
    for key in ("seeds", "datasets"):
        if missing := [value for value in started[key] if value not in given[key]]:
            changes.append(f"{key} {show(started[key])} -> {show(given[key])} (removes {show(missing)})")
    rows = {row_name(entry): entry for entry in given["losses"]}
    for entry in started["losses"]:
        name = row_name(entry)
        if rows.get(name) != entry:
            changes.append(f"losses.{name} {show(entry)} -> {show(rows.get(name, 'removed'))}")
    return changes


def skipped(key: str) -> bool:
    """Whether a flat key is operational or growing (or lies under one that is)."""
    parts = key.split(".")
    prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
    return bool(prefixes & (OPERATIONAL | set(GROWING)))


def show(value: Any) -> str:
    return json.dumps(value) if value is not None else "unset"


def grown(record: dict[str, Any], spec: StudySpec) -> tuple[StudySpec, Stage | None]:
    """The spec to resume with (a protocol keeps the search seed it started with) and the new
    stage it adds (None when it adds nothing); refused, before any compute, for any other change."""
    last = stages(record)[-1]
    started = recorded_spec({**record["spec"], **dataclasses.asdict(last)})
    given = plain(spec)
    if changes := changed_keys(started, given):
        raise ConfigError(
            f"study '{spec.name}' was started with another spec, and --resume only adds seeds, datasets "
            f"or rows: {'; '.join(changes)}. Restore those values, or give the study a new name "
            f"(name: {spec.name}-2) to start another."
        )
    stage = Stage(spec.seeds, spec.datasets, tuple(given["losses"]))  # rows as written
    return kept_search_seed(record, spec), (stage if stage.added_to(last) else None)


def recorded_spec(data: dict[str, Any]) -> dict[str, Any]:
    """The spec a study recorded, read by this version (so a setting added since, at its
    default, is no change); as recorded where this version cannot read it."""
    data = json.loads(json.dumps(data, default=str))
    try:
        return plain(spec_from_mapping(data, "study.json"))
    except ConfigError:
        return data


def kept_search_seed(record: dict[str, Any], spec: StudySpec) -> StudySpec:
    """A protocol whose search seed followed its seeds (max + 1) keeps the one its search trained
    on when seeds are added; a new seed equal to it is refused (final results are measured on
    seeds the search never saw)."""
    started = record["spec"]
    if spec.kind != "protocol" or started["search"]["seed"] is not None or spec.search.seed is not None:
        return spec
    seed = max(started["seeds"]) + 1
    if seed in spec.seeds:
        raise ConfigError(
            f"seeds: {seed} is the seed this study's search trained on; add other seeds (final "
            "results are measured on seeds the search never saw)."
        )
    return spec.model_copy(update={"search": spec.search.model_copy(update={"seed": seed})})
