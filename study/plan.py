"""From a spec to phases of trials, and every check that must pass before the first trial."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from study.searchers import FixedTrials, GroupedSearch, SearchGroup, merge_params, optuna_searcher
from study.spaces import search_space
from study.spec import StudySpec, where_in_spec
from trainables.config import TrialConfig
from trainables.errors import ConfigError
from trainables.training.seeding import seed_hash


@dataclass(frozen=True)
class Phase:
    """One Tune experiment: its name, its trial count and the searcher that yields its trials."""

    name: str
    trials: int
    searcher: Callable[[], Any]
    preview: tuple[str, ...]
    asha: bool = False


def base_config(spec: StudySpec, dataset: str, loss: str, seed: int, phase: str) -> dict[str, Any]:
    """The trial config of one dataset x loss x seed at the spec's fixed settings."""
    return {
        **spec.training,
        "dataset": dataset,
        "loss": loss,
        "loss_params": dict(spec.loss_params.get(loss, {})),
        "seed": seed,
        "model": spec.model,
        "fidelity": spec.fidelity,
        "study": spec.name,
        "phase": phase,
    }


def checked(config: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Validate a trial config now, naming the spec key at fault; returns it with every default
    filled in, so each trial's recorded config is complete."""
    try:
        return TrialConfig.from_dict(config).to_dict()
    except ConfigError as error:
        key, _, message = str(error).partition(": ")
        context = f" ({config['dataset']}, {config['loss']})"
        raise ConfigError(f"{where or where_in_spec(key, config['loss'])}{context}: {message}") from None


def describe(config: dict[str, Any]) -> str:
    """A one-line summary of a trial for --dry-run."""
    params = ", ".join(f"{k}={v}" for k, v in config["loss_params"].items())
    tags = "".join(f" {k}={v}" for k, v in config.get("tags", {}).items())
    return f"{config['dataset']:>8} {config['loss']:<12} seed {config['seed']}{tags}  {params}"


def fixed_phase(name: str, configs: list[dict[str, Any]]) -> Phase:
    """A phase that runs exactly these configs."""
    configs = [checked(config) for config in configs]
    return Phase(name, len(configs), lambda: FixedTrials(configs), tuple(map(describe, configs)))


def grid_phase(spec: StudySpec) -> Phase:
    """Every dataset x loss x seed at fixed settings."""
    configs = [
        base_config(spec, dataset, loss, seed, "grid")
        for dataset in spec.datasets
        for loss in spec.losses
        for seed in spec.seeds
    ]
    return fixed_phase("grid", configs)


def ablation_phase(spec: StudySpec) -> Phase:
    """One factor at a time around the base config of `ablation.loss`, each level x seeds; a level
    may be a mapping that sets several parameters at once (alpha with spreading propagation)."""
    if not spec.ablation.factors:
        raise ConfigError(
            "ablation.factors: name at least one factor with its levels, e.g. sigma: [0.1, 0.5]."
        )
    configs = []
    for factor, levels in spec.ablation.factors.items():
        for level in levels:
            for dataset in spec.datasets:
                for seed in spec.seeds:
                    base = base_config(spec, dataset, spec.ablation.loss, seed, "ablation")
                    config = merge_params(base, level if isinstance(level, dict) else {factor: level})
                    config["tags"] = {"factor": factor, "level": str(level)}
                    configs.append(checked(config, f"ablation.factors.{factor}"))
    return fixed_phase("ablation", configs)


def search_phase(spec: StudySpec) -> Phase:
    """An independent Optuna search per dataset x searched loss, on the first seed."""
    settings = spec.search
    groups, preview = [], []
    for dataset in spec.datasets:
        for loss in spec.searched_losses:
            base = checked(base_config(spec, dataset, loss, spec.seeds[0], "search"))
            space = checked_space(spec, base)
            groups.append((base, space, seed_hash(settings.seed, dataset, loss)))
            names = ", ".join(space) or "nothing (lr fixed)"
            preview.append(f"{dataset:>8} {loss:<12} {settings.trials} trials over {names}")

    def searcher() -> GroupedSearch:
        return GroupedSearch(
            [
                SearchGroup(
                    base,
                    optuna_searcher(space, settings.sampler, seed, settings.max_concurrent, settings.trials),
                    settings.trials,
                )
                for base, space, seed in groups
            ]
        )

    return Phase(
        "search", len(groups) * settings.trials, searcher, tuple(preview), settings.scheduler == "asha"
    )


def checked_space(spec: StudySpec, base: dict[str, Any]) -> dict:
    """The loss's search space, each bound checked against the loss's own validation."""
    loss = base["loss"]
    batch_size = TrialConfig.from_dict(base).batch_size
    space = search_space(loss, spec.fidelity, batch_size, spec.search.space.get(loss))
    for name, distribution in space.items():
        for value in distribution.extremes():
            checked(merge_params(base, {name: value}), f"search.space.{loss}.{name}")
    return space


def final_phase(spec: StudySpec, best: dict[tuple[str, str], dict[str, Any]]) -> Phase:
    """The protocol's second phase: each dataset x loss at its best searched config, every seed."""
    configs = []
    for dataset in spec.datasets:
        for loss in spec.losses:
            chosen = best.get((dataset, loss)) or base_config(spec, dataset, loss, spec.seeds[0], "final")
            configs += [{**chosen, "seed": seed, "phase": "final"} for seed in spec.seeds]
    return fixed_phase("final", configs)


def final_preview(spec: StudySpec) -> Phase:
    """What --dry-run shows for the final phase before the search has chosen configs."""
    count = len(spec.datasets) * len(spec.losses) * len(spec.seeds)
    line = (
        f"{len(spec.datasets)} datasets x {len(spec.losses)} losses x {len(spec.seeds)} seeds "
        "at the best searched configs"
    )
    return Phase("final", count, lambda: None, (line,))


def phases(spec: StudySpec) -> list[Phase]:
    """The phases a study runs, in order (the final phase of a protocol is only previewed)."""
    if spec.kind == "grid":
        return [grid_phase(spec)]
    if spec.kind == "ablation":
        return [ablation_phase(spec)]
    if spec.kind == "search":
        return [search_phase(spec)]
    return [search_phase(spec), final_preview(spec)]


def with_data_dir(spec: StudySpec, data_dir: str | None) -> StudySpec:
    """The spec with the data directory every trial should read (a --data-dir flag wins)."""
    if data_dir is None:
        return spec
    return dataclasses.replace(spec, training={**spec.training, "data_dir": data_dir})


def check_inputs(spec: StudySpec, *, dry_run: bool = False) -> None:
    """Before any trial: the model loads, every dataset reads cleanly and splits as configured.
    A dry run accepts the paper's aliases (bert-base, ...) where the hub is out of reach, so a
    laptop can plan a cluster's study; any other name must resolve here."""
    from trainables.data.corpus import load_corpus
    from trainables.data.splits import make_splits
    from trainables.model.names import ALIASES, check_model
    from trainables.paths import resolve_data_dir

    if not (dry_run and spec.model in ALIASES):
        check_model(spec.model)
    for dataset in spec.datasets:
        config = TrialConfig.from_dict(base_config(spec, dataset, spec.losses[0], spec.seeds[0], "check"))
        corpus = load_corpus(dataset, resolve_data_dir(config.data_dir))
        make_splits(
            corpus,
            val_fraction=config.val_fraction,
            split_seed=config.split_seed,
            train_size=config.train_size,
            eval_size=config.eval_size,
        )
