"""One call, `compare_study`, answers which row of a study is better, equivalent or undecided: per
protocol (integrated and standalone rows are different experiments), per dataset and pair of rows,
a Bayesian verdict with a region of practical equivalence (ROPE), the mean difference with its
interval, the frequentist test corrected across the whole family the table tests, and the power
behind it (minimum detectable effect, seeds that would settle it); across datasets, Friedman's test
with Iman-Davenport's F, mean ranks and a Bayesian verdict per pair. The result is immutable; the
report, `gloss analyze` and the notebook only render it."""

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.bayes import across_datasets, t_posterior
from analysis.power import MAX_SEEDS, POWER, minimum_detectable_effect, seeds_needed
from analysis.select import PROTOCOLS, comparison_trials, finished, protocol
from analysis.stats import Comparison, compare, mean_interval, paired_test
from common.records import RESULT_METRIC, config_column, setting_keys

#: 0.5 points of macro-F1; scores in the records are fractions.
DEFAULT_ROPE = 0.005
#: A posterior probability from which a verdict is stated rather than left undecided.
DECISION = 0.95
#: A ROPE this wide (20 points) can only be a ROPE written in points instead of the metric's units.
MAX_ROPE = 0.2
#: Fewer seeds than this per cell and the study says, first, that its comparisons are underpowered.
ENOUGH_SEEDS = 5
#: The row that trains nothing (the untrained encoder read by the same head or probe).
CONTROL = "none"
PAIR_COLUMNS = [
    "dataset", "a", "b", "n", "difference", "ci_low", "ci_high", "interval",
    "p_a_better", "p_equivalent", "p_b_better", "bayesian_test",
    "test", "statistic", "p", "p_adjusted", "mde", "seeds_needed", "verdict",
]  # fmt: skip
ACROSS_COLUMNS = [
    "a",
    "b",
    "datasets",
    "seeds",
    "p_a_better",
    "p_equivalent",
    "p_b_better",
    "test",
    "verdict",
]
#: The protocol name when the user compares integrated and standalone rows together (split=False).
TOGETHER = "all"
DESCRIPTIONS = {**PROTOCOLS, TOGETHER: "integrated and standalone rows together, as asked (split=False)"}
#: Config fields that name a trial rather than configure it; never listed as its configuration.
NOT_SETTINGS = {
    "dataset",
    "loss",
    "method",
    "tags",
    "seed",
    "study",
    "phase",
    "data_dir",
    "device",
    "save_embeddings",
}


@dataclass(frozen=True, eq=False)
class ProtocolComparison:
    """The comparisons among rows selected and scored alike (`protocol`: integrated or standalone)."""

    protocol: str
    description: str
    reference: str | None  # the row every other is compared with; None: all pairs
    scores: pd.DataFrame  # long: dataset, loss, seed, score (the per-seed scores every test used)
    pairs: pd.DataFrame  # per dataset and pair: PAIR_COLUMNS
    family: str  # what the correction of `p_adjusted` covered, in words
    across: pd.DataFrame  # per pair over datasets: ACROSS_COLUMNS
    ranking: Comparison | None  # Friedman, Iman-Davenport, mean ranks, CD over dataset means


@dataclass(frozen=True, eq=False)
class StudyComparison:
    """Everything `compare_study` found; `protocols` holds one comparison per protocol present."""

    metric: str
    rope: float
    alpha: float
    correction: str
    decision: float
    power: float
    protocols: tuple[ProtocolComparison, ...]
    configurations: pd.DataFrame  # per protocol, dataset and row: the settings its trials ran with
    fewest_seeds: int  # the fewest seeds of any dataset x row cell

    @property
    def underpowered(self) -> bool:
        """Whether some cell has fewer than ENOUGH_SEEDS seeds."""
        return self.fewest_seeds < ENOUGH_SEEDS

    def power_sentence(self) -> str:
        """One sentence for the top of a report: how far the seeds carry the comparisons."""
        if not self.underpowered:
            return f"Every cell has at least {self.fewest_seeds} seeds."
        if self.fewest_seeds == 1:
            return (
                "Underpowered: some cells have 1 seed, which has no spread, so their comparisons cannot be "
                f"judged at all; run at least 2 seeds (better {ENOUGH_SEEDS}) to see how many are needed."
            )
        return (
            f"Underpowered: some cells have {self.fewest_seeds} seed{'s' * (self.fewest_seeds != 1)} "
            f"(fewer than {ENOUGH_SEEDS}), so most comparisons stay undecided; the seeds each one "
            "would need are listed beside it."
        )

    def per_seed_scores(self) -> pd.DataFrame:
        """The scores every test used, one row per protocol, dataset, row and seed."""
        frames = [p.scores.assign(protocol=p.protocol) for p in self.protocols]
        if not frames:
            return pd.DataFrame(columns=["protocol", "dataset", "loss", "seed", "score"])
        return pd.concat(frames, ignore_index=True)[["protocol", "dataset", "loss", "seed", "score"]]


def compare_study(
    final: pd.DataFrame,
    metric: str = RESULT_METRIC,
    baseline: str | None = "ce",
    rope: float = DEFAULT_ROPE,
    alpha: float = 0.05,
    correction: str = "holm",
    decision: float = DECISION,
    hierarchical: bool = False,
    power: float = POWER,
    split: bool = True,
) -> StudyComparison:
    """Compare the rows of a study's finished comparison trials (`final_results`), per protocol.

    `rope` is in the metric's units (0.005 = 0.5 points of macro-F1). Each row is compared with
    `baseline` (else with the control row `none`, else all pairs). `correction` is any method of
    statsmodels' `multipletests`, applied across every dataset x pair the protocol's table tests.
    `hierarchical` asks for baycomp's hierarchical test across datasets (needs Stan, a minute or
    more to compile once per machine); otherwise, and where it cannot run, the Bayesian signed-rank
    test on dataset means; each result names its test. `split=False` compares integrated and
    standalone rows together, as one experiment, when the user asks for it."""
    check_settings(rope, alpha, correction, decision)
    trials = finished(comparison_trials(final))
    trials = trials.assign(protocol=protocol(trials) if split else TOGETHER).dropna(subset=[metric])
    settings = dict(rope=rope, alpha=alpha, correction=correction, decision=decision, power=power)
    protocols = tuple(
        _protocol_comparison(name, group, metric, baseline, hierarchical, settings)
        for name, group in trials.groupby("protocol", sort=True)
    )
    cells = trials.groupby(["protocol", "dataset", "loss"]).size()
    return StudyComparison(
        metric=metric,
        protocols=protocols,
        configurations=configurations(trials),
        fewest_seeds=int(cells.min()) if len(cells) else 0,
        **settings,
    )


def configurations(trials: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, dataset and row, the settings its trials ran with: every loss parameter and
    every config field that differs between rows ('a / b' where its seeds differ)."""
    columns = [c for c in trials.columns if setting_keys(c) and setting_keys(c)[0] not in NOT_SETTINGS]
    keys = ["protocol", "dataset", "loss"]
    values = trials[keys].join(trials[columns].map(str))
    table = values.groupby(keys).agg(lambda v: " / ".join(sorted(set(v) - {"nan", "None"})) or "-")
    shown = [
        c
        for c in columns
        if setting_keys(c)[0] == "loss_params" or table[c].nunique() > 1 or c == config_column("lr")
    ]
    table = table[shown].rename(columns=lambda c: "/".join(setting_keys(c)).removeprefix("loss_params/"))
    return table.loc[:, ~table.columns.duplicated()]


def verdict(pair: dict, rope: float, decision: float) -> str:
    """The claim a pair's numbers support, in words: better with probability p, equivalent within
    the ROPE, or undecided with the seeds that would settle it."""
    points = f"{100 * rope:g} points"
    if pair["n"] < 2:
        return "undecided: one seed, no spread to judge or plan from"
    if pair["p_a_better"] >= decision:
        return f"{pair['a']} better with probability {pair['p_a_better']:.2f}"
    if pair["p_b_better"] >= decision:
        return f"{pair['b']} better with probability {pair['p_b_better']:.2f}"
    if pair["p_equivalent"] >= decision:
        return f"equivalent within {points} (probability {pair['p_equivalent']:.2f})"
    needed = pair.get("seeds_needed")
    if needed is None or pd.isna(needed) or needed > MAX_SEEDS:
        return f"undecided: more than {MAX_SEEDS} seeds would be needed"
    more = max(int(needed) - int(pair["n"]), 1)
    return f"undecided: add {more} seed{'s' * (more != 1)}"


def _protocol_comparison(
    name: str, trials: pd.DataFrame, metric: str, baseline: str | None, hierarchical: bool, settings: dict
) -> ProtocolComparison:
    scores = (
        trials.groupby(["dataset", "loss", "seed"], as_index=False)[metric]
        .mean()
        .rename(columns={metric: "score"})
    )
    rows = sorted(scores["loss"].unique())
    reference = next((r for r in (baseline, CONTROL) if r in rows), None)
    pairs = _pairs(rows, reference)
    table = _pair_table(scores, pairs, settings)
    tests = len(table.dropna(subset=["p"]))
    family = (
        f"{settings['correction']} across the {tests} tests of this table "
        f"({table['dataset'].nunique()} datasets x {len(pairs)} pairs)"
        if tests
        else "none: no pair has 2 seeds to test"
    )
    return ProtocolComparison(
        protocol=name,
        description=DESCRIPTIONS[name],
        reference=reference,
        scores=scores,
        pairs=table,
        family=family,
        across=_across(scores, pairs, hierarchical, settings),
        ranking=_ranking(scores, settings["alpha"]),
    )


def _pairs(rows: list[str], reference: str | None) -> list[tuple[str, str]]:
    if reference is None:
        return list(combinations(rows, 2))
    return [(row, reference) for row in rows if row != reference]


def _pair_table(scores: pd.DataFrame, pairs: list[tuple[str, str]], settings: dict) -> pd.DataFrame:
    """Per dataset and pair with paired seeds: the numbers of PAIR_COLUMNS, p corrected across them,
    power at the family's strictest (Holm's first) threshold alpha / tests."""
    rows = []
    for dataset, group in scores.groupby("dataset", sort=True):
        wide = group.pivot(index="seed", columns="loss", values="score")
        for a, b in pairs:
            if a in wide and b in wide and len(both := wide[[a, b]].dropna()):
                rows.append(_pair(dataset, a, b, both[a].to_numpy(), both[b].to_numpy(), settings["rope"]))
    tested = [row for row in rows if not math.isnan(row["p"])]
    adjusted = multipletests([row["p"] for row in tested], method=settings["correction"])[1] if tested else []
    for row, p in zip(tested, adjusted, strict=True):
        row["p_adjusted"] = float(p)
    family_alpha = settings["alpha"] / max(len(tested), 1)
    for row in rows:
        d = row.pop("_d")
        sd = d.std(ddof=1) if d.size > 1 else math.nan
        row["mde"] = minimum_detectable_effect(sd, d.size, family_alpha, settings["power"])
        row["seeds_needed"] = seeds_needed(d, settings["rope"], family_alpha, settings["power"])
        row["verdict"] = verdict(row, settings["rope"], settings["decision"])
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _pair(dataset: str, a: str, b: str, scores_a: np.ndarray, scores_b: np.ndarray, rope: float) -> dict:
    d = scores_a - scores_b
    low, high, interval = mean_interval(d)
    p_a, p_e, p_b, bayesian_test = t_posterior(d, rope)
    test, statistic, p = paired_test(scores_a, scores_b) if d.size >= 2 else ("none", math.nan, math.nan)
    return {
        "dataset": dataset, "a": a, "b": b, "n": d.size, "difference": d.mean(),
        "ci_low": low, "ci_high": high, "interval": interval,
        "p_a_better": p_a, "p_equivalent": p_e, "p_b_better": p_b, "bayesian_test": bayesian_test,
        "test": test, "statistic": statistic, "p": p, "p_adjusted": math.nan, "_d": d,
    }  # fmt: skip


def _across(
    scores: pd.DataFrame, pairs: list[tuple[str, str]], hierarchical: bool, settings: dict
) -> pd.DataFrame:
    """Per pair over the datasets where both rows have paired seeds (the same count in each, the
    fewest any dataset has): the Bayesian verdict across datasets."""
    rows = []
    for a, b in pairs:
        blocks = []
        for _, group in scores.groupby("dataset", sort=True):
            wide = group.pivot(index="seed", columns="loss", values="score")
            if a in wide and b in wide and len(both := wide[[a, b]].dropna()):
                blocks.append(both)
        if len(blocks) < 2:
            continue
        seeds = min(len(block) for block in blocks)
        x = np.array([block[a].to_numpy()[:seeds] for block in blocks])
        y = np.array([block[b].to_numpy()[:seeds] for block in blocks])
        p_a, p_e, p_b, test = across_datasets(x, y, settings["rope"], hierarchical)
        row = {"a": a, "b": b, "datasets": len(blocks), "seeds": seeds, "n": seeds}
        row.update(p_a_better=p_a, p_equivalent=p_e, p_b_better=p_b, test=test)
        row["verdict"] = _across_verdict(row, settings["rope"], settings["decision"])
        rows.append(row)
    return pd.DataFrame(rows, columns=ACROSS_COLUMNS)


def _across_verdict(row: dict, rope: float, decision: float) -> str:
    if max(row["p_a_better"], row["p_equivalent"], row["p_b_better"]) < decision:
        return "undecided: add datasets or seeds"
    return verdict({**row, "n": max(row["n"], 2)}, rope, decision)


def _ranking(scores: pd.DataFrame, alpha: float) -> Comparison | None:
    """Friedman, Iman-Davenport and mean ranks over datasets (means over seeds), complete rows only."""
    means = scores.pivot_table(index="dataset", columns="loss", values="score", aggfunc="mean").dropna()
    if len(means) < 2 or means.shape[1] < 2:
        return None
    return compare(means, alpha=alpha)


def check_settings(
    rope: float = DEFAULT_ROPE, alpha: float = 0.05, correction: str = "holm", decision: float = DECISION
) -> None:
    """Arguments a user sets, checked before any test runs, each failing with one sentence."""
    if not 0 <= rope < MAX_ROPE:
        raise ValueError(
            f"rope is in the metric's units (0.005 = 0.5 points of macro-F1) and below {MAX_ROPE}; got "
            f"{rope}: write it as a fraction."
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha}.")
    if not 0.5 < decision < 1:
        raise ValueError(f"decision must lie strictly between 0.5 and 1; got {decision}.")
    try:
        multipletests([0.5], method=correction)
    except ValueError:
        raise ValueError(
            f"correction {correction!r} is not a statsmodels multipletests method "
            "(e.g. holm, bonferroni, fdr_bh)."
        ) from None
