"""From a spec to phases of trials, and every check that must pass before the first trial.

A trial's settings are a `TrialConfig` from the moment the plan checks them; they become a plain
dict once, where a searcher hands them to Ray Tune, and typed again once, inside the trainable."""

import dataclasses
import json
from typing import Any

from common.errors import ConfigError
from study.fairness import check_fair
from study.phase import Group, Phase
from study.searchers import FixedTrials, GroupedSearch, SearchGroup, optuna_searcher
from study.settings import loss_params_of
from study.spaces import LEARNING_RATE, Distribution, configurations, search_space
from study.spec import StudySpec, fixed_keys, space_origin, where_in_spec
from trainables.config import TrialConfig
from trainables.training.seeding import seed_hash


def base_config(spec: StudySpec, dataset: str, row: str, seed: int, phase: str) -> TrialConfig:
    """The checked trial config of one dataset x row x seed at the spec's fixed settings:
    `training`, the loss's `loss_params`, then the row's own `params`."""
    method = spec.method(row)
    base = {
        **spec.training.written(),
        **spec.checkpoint.trial_settings(),  # the checkpoint policy reaches trials as typed settings
        "dataset": dataset,
        "loss": method.loss,
        "method": method.name,
        "loss_params": loss_params_of(spec.loss_params, method.loss),
        "seed": seed,
        "model": spec.model,
        "fidelity": spec.fidelity,
        "study": spec.name,
        "phase": phase,
    }
    return applied(spec, checked(spec, base), method.params)


def located(spec: StudySpec, dataset: str, row: str, error: ConfigError, where: str = "") -> ConfigError:
    """A trial-config error restated with the spec key at fault and the (dataset, row)."""
    key, _, message = str(error).partition(": ")
    return ConfigError(f"{where or where_in_spec(spec, row, key)} ({dataset}, {row}): {message}")


def checked(spec: StudySpec, config: dict[str, Any], where: str = "") -> TrialConfig:
    """The typed trial settings of a config the spec wrote, checked now, an error naming the
    spec key at fault."""
    try:
        return TrialConfig.from_dict(config)
    except ConfigError as error:
        raise located(spec, config["dataset"], config.get("method") or config["loss"], error, where) from None


def applied(spec: StudySpec, base: TrialConfig, values: dict[str, Any], where: str = "") -> TrialConfig:
    """`base` with the spec's `values` set (a row's params, an ablation level, a search bound),
    an error naming the spec key at fault."""
    try:
        return base.with_values(values)
    except ConfigError as error:
        raise located(spec, base.dataset, base.method, error, where) from None


def describe(config: TrialConfig) -> str:
    """A one-line summary of a trial for --dry-run."""
    params = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config.loss_params).items())
    tags = "".join(f" {k}={v}" for k, v in config.tags.items())
    return f"{config.dataset:>8} {config.method:<14} seed {config.seed}{tags}  {params}"


def grouped(name: str, configs: list[TrialConfig]) -> tuple[Group, ...]:
    """Configs that differ only in their seed, as one group each."""
    groups: dict[str, list[TrialConfig]] = {}
    for config in configs:
        key = json.dumps({**config.to_dict(), "seed": None}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(config)
    return tuple(
        Group(
            name,
            same[0].dataset,
            same[0].method,
            same[0].loss,
            tuple(c.seed for c in same),
            len(same),
            same[0],
        )
        for same in groups.values()
    )


def fixed_phase(name: str, configs: list[TrialConfig]) -> Phase:
    """A phase that runs exactly these checked configs (plain dicts from here on: Tune's)."""
    plain = [config.to_dict() for config in configs]
    preview = tuple(map(describe, configs))
    return Phase(
        name, len(configs), lambda record=None: FixedTrials(plain), preview, groups=grouped(name, configs)
    )


def grid_phase(spec: StudySpec) -> Phase:
    """Every dataset x row x seed at fixed settings."""
    configs = [
        base_config(spec, dataset, row, seed, "grid")
        for dataset in spec.datasets
        for row in spec.rows
        for seed in spec.seeds
    ]
    return fixed_phase("grid", configs)


def ablation_phase(spec: StudySpec) -> Phase:
    """One factor at a time around the base config of row `ablation.loss`, each level x seeds; a
    level may be a mapping that sets several parameters at once (alpha with spreading
    propagation)."""
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
                    values = level if isinstance(level, dict) else {factor: level}
                    config = applied(spec, base, values, f"ablation.factors.{factor}")
                    configs.append(dataclasses.replace(config, tags={"factor": factor, "level": str(level)}))
    return fixed_phase("ablation", configs)


def search_phase(spec: StudySpec) -> Phase:
    """An independent Optuna search per dataset x searched row, on the search seed: every
    configuration once where the row's space is finite and no larger than the budget, else
    `search.trials` sampled ones."""
    settings = spec.search
    groups = []
    for dataset in spec.datasets:
        for row in spec.searched_losses:
            base = base_config(spec, dataset, row, spec.search_seed, "search")
            space = row_space(spec, row, base)
            grid = configurations(space, settings.trials)
            trials = settings.trials if grid is None else len(grid)
            seeds, exhaustive = (spec.search_seed,), grid is not None
            groups.append(
                Group(
                    "search", dataset, row, base.loss, seeds, trials, base, space, settings.trials, exhaustive
                )
            )
    return searching(spec, tuple(groups))


def searching(spec: StudySpec, groups: tuple[Group, ...], folder: str = "") -> Phase:
    """The search phase (or experiment `folder` of it) over `groups`, one Optuna search each."""
    settings = spec.search
    preview = [f"{g.dataset:>8} {g.row:<14} {search_line(g)}" for g in groups]

    def searcher(record: str | None = None) -> GroupedSearch:
        return GroupedSearch(
            [
                SearchGroup(
                    group.config,
                    optuna_searcher(
                        group.space,
                        settings.sampler,
                        seed_hash(spec.search_seed, group.dataset, group.row),
                        settings.max_concurrent,
                        settings.trials,
                    ),
                    group.trials,
                )
                for group in groups
            ],
            record,
        )

    preview.append(f"search trials train on seed {spec.search_seed}")
    trials = sum(group.trials for group in groups)
    return Phase("search", trials, searcher, tuple(preview), settings.scheduler == "asha", groups, folder)


def covered(before: StudySpec, dataset: str, row: str, seed: int | None = None) -> bool:
    """Whether stage `before` planned this dataset x row (x seed)."""
    return dataset in before.datasets and row in before.rows and (seed is None or seed in before.seeds)


def new_trials(spec: StudySpec, phase: Phase, before: StudySpec, stage: int) -> Phase | None:
    """The trials of `phase` (planned for `spec`) that the study's earlier stage `before` did not
    cover, as experiment `<phase>+<stage>`; None when there are none (study/growth.py)."""
    folder = f"{phase.name}+{stage}"
    if phase.name == "search":
        groups = tuple(g for g in phase.groups if not covered(before, g.dataset, g.row))
        return searching(spec, groups, folder) if groups else None
    configs = [
        dataclasses.replace(group.config, seed=seed)
        for group in phase.groups
        for seed in group.seeds
        if not covered(before, group.dataset, group.row, seed)
    ]
    return dataclasses.replace(fixed_phase(phase.name, configs), folder=folder) if configs else None


def search_line(group: Group) -> str:
    """The dry run's account of one search: its trials, its space and how the budget is spent."""
    names = ", ".join(group.space) or "nothing (lr fixed)"
    if group.exhaustive:
        return f"{group.trials} trials over {names}: every configuration once (budget {group.budget})"
    return f"{group.trials} trials over {names}: sampled, no configuration twice (budget {group.budget})"


def row_space(spec: StudySpec, row: str, base: TrialConfig) -> dict[str, Distribution]:
    """The row's search space, each bound checked against the loss's own validation; a space
    entry for a value the spec fixes is refused."""
    fixed, plain = fixed_keys(spec, row), base.to_dict()
    entries = {**spec.search.space.get(row, {}), **spec.method(row).space}
    overrides = {}
    for name, value in entries.items():
        where = space_origin(spec, row, name)
        if name in fixed:
            setting = where_in_spec(spec, row, name if name in plain else f"loss_params.{name}")
            raise ConfigError(
                f"{where}: {setting} fixes {name} for row '{row}'; search it or fix it, not both."
            )
        overrides[name] = None if value is None else value.distribution()
    values = {**plain, **plain["loss_params"]}
    space = search_space(base.loss, lr_distribution(spec, row, fixed), overrides, fixed, values)
    for name, distribution in space.items():
        where = space_origin(spec, row, name) or f"search.space.{row}.{name}"
        for value in distribution.extremes():
            applied(spec, base, {name: value}, where)
    return space


def lr_distribution(spec: StudySpec, row: str, fixed: set[str]) -> Distribution | None:
    """Every row's learning-rate distribution (search.lr, else the fidelity's range), or None
    where the spec fixes the learning rate."""
    if "lr" in fixed:
        if spec.search.lr is not None:
            raise ConfigError(
                f"search.lr: {where_in_spec(spec, row, 'lr')} fixes the learning rate; remove one of "
                "them (search.lr: null keeps the fixed rate)."
            )
        return None
    if spec.search.lr is not None:
        return spec.search.lr.distribution()
    return LEARNING_RATE[spec.fidelity]


def final_phase(spec: StudySpec, best: dict[tuple[str, str], dict[str, Any]]) -> Phase:
    """The protocol's second phase: each dataset x row at its best searched config, every seed.
    A row whose search finished no trial (or that was not searched) runs at its base config,
    tagged `unsearched` in its records."""
    configs = []
    for dataset in spec.datasets:
        for row in spec.rows:
            if (searched := best.get((dataset, row))) is not None:
                chosen = TrialConfig.from_dict(searched)
            else:
                chosen = dataclasses.replace(
                    base_config(spec, dataset, row, spec.seeds[0], "final"), tags={"unsearched": True}
                )
            configs += [dataclasses.replace(chosen, seed=seed, phase="final") for seed in spec.seeds]
    return fixed_phase("final", configs)


def final_preview(spec: StudySpec) -> Phase:
    """What --dry-run shows for the final phase before the search has chosen configs: each row's
    base config and the space its searched values come from."""
    groups = []
    for dataset in spec.datasets:
        for row in spec.rows:
            base = base_config(spec, dataset, row, spec.seeds[0], "final")
            space = row_space(spec, row, base) if row in spec.searched_losses else {}
            groups.append(Group("final", dataset, row, base.loss, spec.seeds, len(spec.seeds), base, space))
    lines = [
        f"{len(spec.datasets)} datasets x {len(spec.rows)} rows x {len(spec.seeds)} seeds "
        f"(seeds {list(spec.seeds)}) at the best searched configs"
    ]
    if unsearched := [row for row in spec.rows if row not in spec.searched_losses]:
        lines.append(f"not searched, run at their base config and marked unsearched: {', '.join(unsearched)}")
    return Phase(
        "final", sum(g.trials for g in groups), lambda record=None: None, tuple(lines), groups=tuple(groups)
    )


def phases(spec: StudySpec) -> list[Phase]:
    """The phases a study runs, in order (the final phase of a protocol is only previewed),
    refused when its rows do not share their conditions (study/fairness.py)."""
    if spec.kind == "grid":
        plan = [grid_phase(spec)]
    elif spec.kind == "ablation":
        plan = [ablation_phase(spec)]
    elif spec.kind == "search":
        plan = [search_phase(spec)]
    else:
        plan = [search_phase(spec), final_preview(spec)]
    check_fair(spec, plan[-1].groups)
    return plan


def with_data_dir(spec: StudySpec, data_dir: str | None) -> StudySpec:
    """The spec with the data directory every trial should read (a --data-dir flag wins)."""
    if data_dir is None:
        return spec
    return spec.model_copy(update={"training": spec.training.model_copy(update={"data_dir": data_dir})})


def check_inputs(spec: StudySpec, *, dry_run: bool = False) -> None:
    """Before any trial: the model loads, every dataset reads cleanly and splits as configured.
    A dry run accepts the paper's aliases (bert-base, ...) where the hub is out of reach, so a
    laptop can plan a cluster's study; any other name must resolve here."""
    from common.paths import resolve_data_dir
    from trainables.data.corpus import load_corpus
    from trainables.data.splits import make_splits
    from trainables.model.names import ALIASES, check_model

    if not (dry_run and spec.model in ALIASES):
        check_model(spec.model)
    for dataset in spec.datasets:
        config = base_config(spec, dataset, spec.rows[0], spec.seeds[0], "check")
        corpus = load_corpus(dataset, resolve_data_dir(config.data_dir))
        make_splits(
            corpus,
            val_fraction=config.val_fraction,
            split_seed=config.split_seed,
            train_size=config.train_size,
            eval_size=config.eval_size,
        )
