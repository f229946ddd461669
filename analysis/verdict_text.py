"""`compare_study`'s result as readable tables and text, in percent points: what the report shows
and `gloss analyze` prints. Renders only; computes nothing."""

import math

import pandas as pd

from analysis.stats import MIN_BOOTSTRAP_N
from analysis.verdicts import ProtocolComparison, StudyComparison


def points(value: float, sign: bool = False) -> str:
    """A fraction as percent points, '-' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:{'+' if sign else ''}.2f}"


def probability(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def pair_frame(comparison: ProtocolComparison) -> pd.DataFrame:
    """Per dataset and pair: the difference with its interval, the three probabilities, the
    frequentist test, the power and the verdict."""
    rows = []
    for row in comparison.pairs.to_dict("records"):
        if row["n"] < 2:
            difference = f"{points(row['difference'], True)} (n = 1: no spread)"
        else:
            interval = f"[{points(row['ci_low'], True)}, {points(row['ci_high'], True)}]"
            difference = f"{points(row['difference'], True)} {interval}"
        rows.append(
            {
                "dataset": row["dataset"],
                "a": row["a"],
                "b": row["b"],
                "seeds": row["n"],
                "a - b, points [95% CI]": difference,
                "P(a better)": probability(row["p_a_better"]),
                "P(equivalent)": probability(row["p_equivalent"]),
                "P(b better)": probability(row["p_b_better"]),
                "p": "-" if math.isnan(row["p"]) else f"{row['p']:.3g} ({row['test']})",
                "p adjusted": "-" if math.isnan(row["p_adjusted"]) else f"{row['p_adjusted']:.3g}",
                "detectable, points": points(row["mde"]),
                "verdict": row["verdict"],
            }
        )
    return pd.DataFrame(rows)


def settings_frame(result: StudyComparison) -> pd.DataFrame:
    """Per protocol, dataset and row, its settings in one readable cell ('lam=0.7, sigma=0.5')."""
    table = result.configurations
    cells = [
        ", ".join(f"{name}={value}" for name, value in row.items() if value != "-") or "defaults"
        for _, row in table.iterrows()
    ]
    return pd.DataFrame({"settings": cells}, index=table.index)


def across_frame(comparison: ProtocolComparison) -> pd.DataFrame:
    """Per pair over datasets: the three probabilities, the test that gave them and the verdict."""
    frame = comparison.across.drop(columns="test")
    for column in ("p_a_better", "p_equivalent", "p_b_better"):
        frame[column] = frame[column].map(probability)
    return frame.rename(
        columns={"p_a_better": "P(a better)", "p_equivalent": "P(equivalent)", "p_b_better": "P(b better)"}
    )


def ranking_sentence(comparison: ProtocolComparison) -> str:
    """Friedman's chi-squared and Iman-Davenport's F over the protocol's datasets, or why not."""
    ranking = comparison.ranking
    if ranking is None:
        return "Fewer than 2 datasets with every row scored: no ranking across datasets."
    f_test = (
        "Iman-Davenport's F undefined (every dataset ranks the rows alike)"
        if math.isnan(ranking.iman_davenport_p)
        else f"Iman-Davenport's F {ranking.iman_davenport_statistic:.2f}, p = {ranking.iman_davenport_p:.3g}"
    )
    return (
        f"Friedman's test over {ranking.n_blocks} datasets and {len(ranking.methods)} rows: chi-squared "
        f"{ranking.friedman_statistic:.2f}, p = {ranking.friedman_p:.3g}; {f_test}; Nemenyi critical "
        f"difference {ranking.critical_difference:.2f} ranks at alpha = {ranking.alpha}."
    )


def settings_sentence(result: StudyComparison) -> str:
    """The ROPE, the decision threshold, the correction and the intervals, in one sentence."""
    return (
        f"Region of practical equivalence (ROPE): ±{100 * result.rope:g} points of {result.metric}; a "
        f"verdict is stated from a posterior probability of {result.decision}; p-values are corrected "
        f"by {result.correction} across each table; intervals are Student's t below {MIN_BOOTSTRAP_N} "
        "seeds (a bootstrap over few values is too narrow), BCa bootstrap from there on; power is "
        f"{result.power} at the family's strictest threshold (alpha / tests)."
    )


def comparison_text(result: StudyComparison) -> str:
    """What `gloss analyze` prints: per protocol, the verdicts per dataset and across datasets."""
    lines = [result.power_sentence(), settings_sentence(result)]
    for comparison in result.protocols:
        lines += ["", f"{comparison.protocol} rows ({comparison.description})"]
        frame = pair_frame(comparison)
        if len(frame):
            lines += [frame.to_string(index=False), f"correction: {comparison.family}"]
        if len(comparison.across):
            lines.append(f"across datasets, {comparison.across['test'].iloc[0]}:")
            lines.append(across_frame(comparison).to_string(index=False))
        lines.append(ranking_sentence(comparison))
    return "\n".join(lines)
