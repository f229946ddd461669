"""Significance tests over paired blocks: Friedman with Iman-Davenport's F, Nemenyi CD, pairwise tests
with a multiple-comparison correction, and intervals of a mean (t below 30 values, BCa bootstrap from 30).

One call, `compare`, computes everything and returns an immutable `Comparison`; tables and plots
only render it (autorank's style)."""

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

T_TEST = "paired t-test"
WILCOXON = "wilcoxon signed-rank"
#: From this many blocks on, the two-sided Wilcoxon test can reach p < 0.05 (2 / 2**6 = 0.031).
MIN_WILCOXON_BLOCKS = 6
PAIRWISE_COLUMNS = ["a", "b", "statistic", "p", "p_holm", "effect_size", "test"]
T_INTERVAL, BCA_INTERVAL, NO_INTERVAL = "t", "BCa bootstrap", "n = 1: no spread"
#: From this many values on, a mean's interval is a BCa bootstrap; below, Student's t. A bootstrap
#: resamples the observed values only, so with few of them its interval is too narrow (its coverage
#: falls short of the nominal level: Hesterberg 2015, "What teachers should know about the
#: bootstrap", shows the percentile interval narrower than the t interval by a factor
#: sqrt((n - 1) / n) * z / t; at n = 3 the issue's example is 2.5x narrower); by 30 values the
#: factor is within 6% of 1 and the bootstrap's freedom from the normality assumption is worth it.
MIN_BOOTSTRAP_N = 30
#: Score differences are rounded to this many decimals so float round-off cannot break ties (or zeros).
_DECIMALS = 12


@dataclass(frozen=True, eq=False)
class Comparison:
    """Result of `compare`: Friedman test, mean ranks, Nemenyi CD and Holm-adjusted pairwise tests.

    The pairwise test depends on the number of blocks n. With n >= 6 it is the two-sided Wilcoxon
    signed-rank test (exact where scipy computes it exactly, zero differences split between the signs
    as in Demšar 2006), as Benavoli, Corani and Mangili (JMLR 2016) recommend pairwise Wilcoxon/sign
    tests with Holm over post-hoc tests on mean ranks, whose outcome depends on the other methods.
    With n < 6 it is the paired t-test: there the Wilcoxon test (and any exact sign-flip permutation
    test) cannot reach p < 0.05 at all, its smallest two-sided p being 2 / 2**n (0.0625 at n = 5),
    so only the t-test, at the price of assuming normal differences, can detect anything.
    """

    methods: tuple[str, ...]
    n_blocks: int
    alpha: float
    baseline: str | None
    mean_ranks: pd.Series
    friedman_statistic: float
    friedman_p: float
    iman_davenport_statistic: float
    iman_davenport_p: float
    critical_difference: float
    pairwise: pd.DataFrame

    def significant(self) -> pd.DataFrame:
        """Pairwise rows whose Holm-adjusted p is below alpha: the differences one may claim."""
        return self.pairwise[self.pairwise["p_holm"] < self.alpha]


def compare(scores: pd.DataFrame, baseline: str | None = None, alpha: float = 0.05) -> Comparison:
    """Compare methods (columns, higher is better) over paired blocks (rows: datasets or seeds).

    Rows with a missing value are dropped, since every test here needs complete blocks. Mean ranks
    (1 = best, ties averaged) feed the Friedman test (chi-square form, corrected for ties, so it equals
    scipy.stats.friedmanchisquare and Demšar's formula when no block has ties) and the Nemenyi critical
    difference at `alpha`. `pairwise` holds each other method (a) against `baseline` (b), or all pairs
    if `baseline` is None, with a Holm adjustment across its rows and Cohen's d_z of a - b. The pairwise
    test is the Wilcoxon signed-rank test from 6 blocks on (Benavoli et al., JMLR 2016, recommend it
    with Holm over mean-rank post-hoc tests) and the paired t-test below 6 blocks, where no two-sided
    Wilcoxon or sign-flip test can reach p < 0.05 (smallest p = 2 / 2**n = 0.0625 at n = 5).
    """
    complete = _validated(scores, baseline, alpha).dropna()
    methods, n_blocks = tuple(complete.columns), len(complete)
    if n_blocks < 2:
        raise ValueError(f"compare needs at least 2 blocks without missing values; got {n_blocks}.")
    ranks = stats.rankdata(-complete.to_numpy(dtype=float), axis=1)  # rank 1 = highest score
    statistic, p = _friedman(ranks)
    f_statistic, f_p = iman_davenport(statistic, n_blocks, len(methods))
    return Comparison(
        methods=methods,
        n_blocks=n_blocks,
        alpha=alpha,
        baseline=baseline,
        mean_ranks=pd.Series(ranks.mean(axis=0), index=list(methods), name="mean_rank"),
        friedman_statistic=statistic,
        friedman_p=p,
        iman_davenport_statistic=f_statistic,
        iman_davenport_p=f_p,
        critical_difference=critical_difference(len(methods), n_blocks, alpha),
        pairwise=_pairwise(complete, baseline),
    )


def iman_davenport(chi2: float, n_blocks: int, n_methods: int) -> tuple[float, float]:
    """Iman and Davenport's F from Friedman's chi-squared (Demšar 2006, Sec. 3.2.2, who recommends it
    as less conservative): F = (N - 1) chi2 / (N (k - 1) - chi2) on (k - 1, (k - 1)(N - 1)) degrees of
    freedom; (inf, nan) when chi2 reaches its maximum N (k - 1): every block ranks the methods alike,
    F is undefined, and a p of 0 would claim more than a handful of blocks can show."""
    denominator = n_blocks * (n_methods - 1) - chi2
    if denominator <= 0:
        return math.inf, math.nan
    statistic = (n_blocks - 1) * chi2 / denominator
    p = stats.f.sf(statistic, n_methods - 1, (n_methods - 1) * (n_blocks - 1))
    return float(statistic), float(p)


def critical_difference(n_methods: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi CD in rank units (Demšar 2006): q_alpha * sqrt(k(k+1) / 6N), q = studentized range / sqrt 2."""
    q = stats.studentized_range.ppf(1 - alpha, n_methods, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(n_methods * (n_methods + 1) / (6 * n_blocks)))


def paired_test(a: np.ndarray, b: np.ndarray, test: str | None = None) -> tuple[str, float, float]:
    """(test, statistic, two-sided p) for a vs b; `test` None picks it by block count as `compare` does."""
    d = _differences(a, b)
    test = test or (T_TEST if d.size < MIN_WILCOXON_BLOCKS else WILCOXON)
    if test not in (T_TEST, WILCOXON):
        raise ValueError(f"test must be {T_TEST!r} or {WILCOXON!r}; got {test!r}.")
    if test == T_TEST and np.ptp(d) == 0:  # t is 0 or infinite; scipy would warn and return nan or noise
        return test, cohens_dz(d), float(d[0] == 0)
    result = stats.wilcoxon(d, zero_method="zsplit") if test == WILCOXON else stats.ttest_1samp(d, 0.0)
    return test, float(result.statistic), float(result.pvalue)


def cohens_dz(d: np.ndarray) -> float:
    """Paired effect size mean(d) / sd(d) (ddof=1); 0 for all-zero d, inf with d's sign for constant d."""
    d = np.asarray(d, dtype=float)
    if np.ptp(d) == 0:
        return 0.0 if d[0] == 0 else math.copysign(math.inf, d[0])
    return float(d.mean() / d.std(ddof=1))


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, seed: int = 0, resamples: int = 9999
) -> tuple[float, float]:
    """Seeded BCa bootstrap CI of the mean, ignoring NaN; (nan, nan) below 3 values, (v, v) if all
    equal v. The one bootstrap of the package: tables, curves and figures all use it."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size < 3:
        return math.nan, math.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    ci = stats.bootstrap(
        (values,), np.mean, confidence_level=confidence, method="BCa", rng=seed, n_resamples=resamples
    )
    return float(ci.confidence_interval.low), float(ci.confidence_interval.high)


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student's t interval of the mean, ignoring NaN: mean -+ t_{n-1} * sd / sqrt(n); (nan, nan)
    below 2 values, (v, v) if all equal v."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size < 2:
        return math.nan, math.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    half = stats.t.ppf((1 + confidence) / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)


def mean_interval(values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, str]:
    """(low, high, method) of the mean of `values` (NaN ignored): Student's t interval below
    MIN_BOOTSTRAP_N values, where a bootstrap's interval is too narrow to print, and the BCa bootstrap
    from there on, where it no longer assumes the mean is normal; (nan, nan, NO_INTERVAL) from one."""
    values = np.asarray(values, dtype=float)
    if np.isfinite(values).sum() < 2:
        return math.nan, math.nan, NO_INTERVAL
    if np.isfinite(values).sum() < MIN_BOOTSTRAP_N:
        return (*t_interval(values, confidence), T_INTERVAL)
    return (*bootstrap_ci(values, confidence, seed), BCA_INTERVAL)


def seed_summary(scores: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per method (column) over seeds (rows), ignoring NaN: mean, std (ddof=1), the interval of the
    mean (`mean_interval`: t below 30 seeds, BCa from 30) and which it is, and n."""
    intervals = pd.DataFrame(
        [mean_interval(column.to_numpy(), confidence) for _, column in scores.items()],
        index=scores.columns,
        columns=["ci_low", "ci_high", "interval"],
    )
    summary = pd.DataFrame({"mean": scores.mean(), "std": scores.std(ddof=1)}).join(intervals)
    return summary.assign(n=scores.count()).rename_axis("method")


def _differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b, rounded so that float round-off neither breaks ties nor turns equal scores into non-zeros."""
    return np.round(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), _DECIMALS)


def _validated(scores: pd.DataFrame, baseline: str | None, alpha: float) -> pd.DataFrame:
    """The scores, once the arguments are checked, so that a bad call fails with a sentence, not in scipy."""
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(
            f"scores must be a DataFrame (rows = blocks, columns = methods), not {type(scores)}."
        )
    if scores.shape[1] < 2:
        raise ValueError(f"compare needs at least 2 methods (columns); got {scores.shape[1]}.")
    if not scores.columns.is_unique:
        raise ValueError("scores has duplicate method (column) names.")
    if baseline is not None and baseline not in scores.columns:
        raise ValueError(f"baseline {baseline!r} is not a column of scores: {list(scores.columns)}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha}.")
    return scores


def _friedman(ranks: np.ndarray) -> tuple[float, float]:
    """Tie-corrected Friedman chi-square and p from within-block ranks; ours as scipy needs 3 methods."""
    n, k = ranks.shape
    ties = ((ranks[:, :, None] == ranks[:, None, :]).sum(axis=2) ** 2 - 1).sum()  # sum of t^3 - t
    correction = 1 - ties / (n * k * (k * k - 1))
    if correction == 0:  # every block entirely tied: no evidence of any difference
        return 0.0, 1.0
    statistic = (12 / (n * k * (k + 1)) * (ranks.sum(axis=0) ** 2).sum() - 3 * n * (k + 1)) / correction
    return float(statistic), float(stats.chi2.sf(statistic, k - 1))


def _pairwise(scores: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """Each other method against the baseline, or all pairs, with test, p, Holm-adjusted p and d_z."""
    if baseline is None:
        pairs = list(combinations(scores.columns, 2))
    else:
        pairs = [(method, baseline) for method in scores.columns if method != baseline]
    rows = [
        (a, b, *paired_test(scores[a], scores[b]), cohens_dz(_differences(scores[a], scores[b])))
        for a, b in pairs
    ]
    table = pd.DataFrame(rows, columns=["a", "b", "test", "statistic", "p", "effect_size"])
    table["p_holm"] = multipletests(table["p"], method="holm")[1]
    return table[PAIRWISE_COLUMNS]
