"""One comparison, one set of conditions: every row of a study gets the same batch sampler,
learning-rate range (or fixed rate), epochs, early stopping, trial budget and other trial
settings, unless the spec's `differences` names the condition (StudySpec lists them)."""

import dataclasses
from collections import Counter

from common.errors import ConfigError, suggest
from study.phase import Group
from study.spaces import configurations
from study.spec import CONDITIONS, StudySpec, fixed_keys, space_origin, where_in_spec
from trainables.config import DEFAULT_LR, TrialConfig
from trainables.data.batches import GROUP_WINDOW
from trainables.losses import loss_entry

GROUPED = {
    "batch_sampler": "sampler",
    "per_class": "sampler",
    "group_by_length": "sampler",
    "patience": "early_stopping",
    "monitor": "early_stopping",
}
FIXES = {
    "budget": "search every row (remove search.losses)",
    "lr": "set search.lr once for all rows (or training.lr to fix it)",
}
NOT_CONDITIONS = {
    "dataset", "loss", "method", "loss_params", "seed", "study", "phase", "tags",
    "data_dir", "device", "save_embeddings", "test_curves",
}  # fmt: skip


def condition_fields() -> list[str]:
    """The budget and the trial settings every row must share."""
    return ["budget", *(f.name for f in dataclasses.fields(TrialConfig) if f.name not in NOT_CONDITIONS)]


def condition_of(name: str) -> str:
    """The condition name a setting belongs to, as `differences` lists it."""
    return GROUPED.get(name, name)


def check_differences(spec: StudySpec) -> None:
    """Every name in `differences` is a condition."""
    known = [*CONDITIONS, *(n for n in condition_fields() if n not in GROUPED and n not in CONDITIONS)]
    for name in spec.differences:
        if name not in known:
            raise ConfigError(
                f"differences: '{name}' is not a condition{suggest(name, known)}; conditions are "
                f"{', '.join(CONDITIONS)}, or a trial setting such as batch_size or class_weighting."
            )


def budget(spec: StudySpec, row: str) -> int:
    """Search trials for `row`: the search's budget, or none for a row the search leaves out."""
    searched = spec.kind in ("search", "protocol") and row in spec.searched_losses
    return spec.search.trials if searched else 0


def setting(spec: StudySpec, group: Group, name: str) -> tuple[str, str]:
    """A row's value of one condition, as text, and the spec key it comes from ('' for a
    default)."""
    row = group.row
    if name == "budget":
        where = "search.losses" if spec.search.losses else ""
        return f"{budget(spec, row)} search trials", where
    if name in group.space:
        return f"searched over {group.space[name].describe()}", space_origin(spec, row, name)
    value = getattr(group.config, name)
    if name == "lr" and value is None:
        value = f"{DEFAULT_LR[spec.fidelity]:g} (the {spec.fidelity} default)"
    where = where_in_spec(spec, row, name) if name in fixed_keys(spec, row) else ""
    return f"{value}", where


def comparison_groups(spec: StudySpec, groups: tuple[Group, ...]) -> list[Group]:
    """One group per row (the first dataset's, an ablation's first level), the rows a study
    compares."""
    rows: dict[str, Group] = {}
    for group in groups:
        rows.setdefault(group.row, group)
    return list(rows.values())


def check_fair(spec: StudySpec, groups: tuple[Group, ...]) -> None:
    """Refuse, in one line naming the key, rows that differ in an undeclared condition. With
    `budget` declared, rows left unsearched run at their base settings and are compared among
    themselves. An ablation compares levels of its factors, which are its declared differences."""
    check_differences(spec)
    if spec.kind == "ablation":
        return
    rows = comparison_groups(spec, groups)
    sets = [rows]
    if "budget" in spec.differences:
        sets = [[g for g in rows if budget(spec, g.row)], [g for g in rows if not budget(spec, g.row)]]
    for name in condition_fields():
        condition = condition_of(name)
        if condition in spec.differences:
            continue
        for same in sets:
            values = {g.row: setting(spec, g, name) for g in same}
            if len({value for value, _ in values.values()}) > 1:
                raise ConfigError(unfair(name, condition, values))


def unfair(name: str, condition: str, values: dict[str, tuple[str, str]]) -> str:
    """The refusal: the key the user wrote, the two rows and their values, and the way out."""
    counts = Counter(value for value, _ in values.values())
    common = max(counts, key=lambda v: (counts[v], -list(counts).index(v)))
    same = [row for row, (value, _) in values.items() if value == common]
    other = [row for row, (value, _) in values.items() if value != common]
    named = [row for row in other if values[row][1]] or [row for row in same if values[row][1]] or other
    odd = named[0]
    peer = same[0] if odd in other else other[0]
    where = values[odd][1] or name
    return (
        f"{where}: row '{odd}' has {name} {values[odd][0]} but row '{peer}' has {name} {values[peer][0]}; "
        f"every row of a study gets the same {condition}: "
        f"{FIXES.get(name, f'set training.{name} once for all rows')}, or declare the difference on "
        f"purpose with `differences: [{condition}]`."
    )


def shared_conditions(spec: StudySpec, groups: tuple[Group, ...]) -> list[str]:
    """The dry run's account of the conditions: those every row shares, the declared
    differences with each row's value, and losses whose declared needs the sampler ignores."""
    rows = comparison_groups(spec, groups)
    if not rows:
        return []
    shown = ("batch_sampler", "lr", "epochs", "patience", "monitor")
    shown += ("budget",) if spec.kind in ("search", "protocol") else ()
    lines = []
    values = {name: [shown_value(spec, g, name) for g in rows] for name in shown}
    shared = [f"{name} {values[name][0]}" for name in shown if len(set(values[name])) == 1]
    lines.append("conditions shared by every row: " + "; ".join(shared))
    if spec.kind in ("search", "protocol"):
        lines.append(budget_spent(spec, rows))
    declared = ", ".join(spec.differences) or "none"
    if spec.kind == "ablation":
        declared += f"; the ablation varies one factor at a time: {', '.join(spec.ablation.factors)}"
    lines.append(f"declared differences: {declared}")
    for name in condition_fields():
        if condition_of(name) in spec.differences and not agree(spec, rows, name):
            per_row = "; ".join(f"{g.row}: {setting(spec, g, name)[0]}" for g in rows)
            lines.append(f"  {name}: {per_row}")
    lines += sampler_notes(rows)
    return lines


def budget_spent(spec: StudySpec, rows: list[Group]) -> str:
    """How each row's search spends the shared budget: exhaustively where its space is finite
    and no larger than the budget (every configuration once, so fewer trials), else sampled."""
    budget = spec.search.trials
    exhaustive, sampled = [], []
    for group in rows:
        if group.row in spec.searched_losses:
            grid = configurations(group.space, budget)
            if grid is None:
                sampled.append(group.row)
            else:
                exhaustive.append(f"{group.row} {len(grid)}")
    parts = []
    if exhaustive:
        parts.append(f"exhaustive, every configuration once, for {', '.join(exhaustive)} trials")
    if sampled:
        parts.append(
            f"sampled by {spec.search.sampler} for {', '.join(sampled)} ({budget} trials each over a "
            "larger space, no configuration twice, fewer if the sampler keeps proposing trained ones)"
        )
    return f"budget spent ({budget} search trials per row): " + "; ".join(parts)


def agree(spec: StudySpec, rows: list[Group], name: str) -> bool:
    return len({setting(spec, g, name)[0] for g in rows}) == 1


def shown_value(spec: StudySpec, group: Group, name: str) -> str:
    """A condition's value as the dry run shows it: the sampler as trials really draw batches."""
    return sampler_text(group.config) if name == "batch_sampler" else setting(spec, group, name)[0]


def sampler_text(config: TrialConfig) -> str:
    """How a trial draws its batches (trainables.training.parts.batch_order): at full fidelity
    random batches are grouped by length within windows that can hold a whole training split."""
    if not config.groups_by_length:
        return config.batch_sampler
    window = config.batch_size * GROUP_WINDOW
    return (
        "random, grouped by length (training.group_by_length): each epoch shuffled, then sorted by "
        f"token length within windows of {GROUP_WINDOW} batches ({window} examples: a whole training "
        "split up to that size), the batches in random order"
    )


def sampler_notes(rows: list[Group]) -> list[str]:
    """A note when losses that ask for class-repeating batches get random ones."""
    asking = [g.row for g in rows if g.config.batch_sampler == "random" and needs_repeats(g.config)]
    if not asking:
        return []
    grouped = any(g.config.groups_by_length for g in rows if g.row in asking)
    kind = "random, grouped by length," if grouped else "random"
    return [
        f"note: batches are {kind} for every row, though {', '.join(asking)} declare that they want "
        "classes to repeat within a batch (Needs.class_repeats); training.batch_sampler: class_aware "
        "gives every row class-aware batches"
    ]


def needs_repeats(config: TrialConfig) -> bool:
    return loss_entry(config.loss).needs.class_repeats
