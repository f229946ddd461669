"""Power of the paired comparisons: the smallest difference the study's seeds could detect, and how
many seeds would settle a difference or an equivalence, from the observed spread of the differences.

All for the two-sided paired t-test at the family's level: `alpha / family` is Holm's first (its
strictest) threshold, so a difference of the minimum detectable effect is found with the stated
power whatever its place in the family."""

import math

import numpy as np
from scipy import integrate, optimize, stats
from statsmodels.stats.power import TTestPower

POWER = 0.8
#: Beyond this many seeds a plan is not a plan: the answer is "more than MAX_SEEDS".
MAX_SEEDS = 1000


def paired_power(effect: float, n: int, alpha: float) -> float:
    """Power of the two-sided paired t-test over `n` seeds at level `alpha` for a true standardised
    difference `effect` (mean / sd): statsmodels' TTestPower, and where that is NaN (on scipy's
    noncentral t, far in its tail: effect 0.83 at 100 seeds) the same probability integrated:
    P(|Z + effect sqrt(n)| > t_crit sqrt(W / (n - 1))), W chi-squared, over W's quantiles."""
    power = TTestPower().power(effect, n, alpha, alternative="two-sided")
    if np.isfinite(power):
        return float(power)
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = effect * math.sqrt(n)

    def rejected(u: float) -> float:
        threshold = critical * math.sqrt(stats.chi2.ppf(u, df) / df)
        return stats.norm.sf(threshold - shift) + stats.norm.cdf(-threshold - shift)

    return float(integrate.quad(rejected, 0, 1, limit=200)[0])


def minimum_detectable_effect(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """The smallest true mean difference (in the scores' units) a two-sided paired t-test over `n`
    seeds detects with probability `power` at level `alpha`, for differences of standard deviation
    `sd`; NaN below 2 seeds or without spread. Solved here because statsmodels' solve_power looks
    for effects below 10 sd only, and 2 or 3 seeds with a Holm-strict alpha need more."""
    if n < 2 or not sd > 0:
        return math.nan
    effect = optimize.brentq(lambda e: paired_power(e, n, alpha) - power, 1e-9, 1e4, xtol=1e-10)
    return float(effect * sd)


def seeds_to_detect(mean: float, sd: float, alpha: float, power: float = POWER) -> int:
    """The fewest seeds (>= 2) with which a two-sided paired t-test detects a true difference of
    `mean` (sd `sd`) with probability `power`; MAX_SEEDS + 1 when more than MAX_SEEDS are needed."""
    return _fewest(lambda n: paired_power(abs(mean) / sd, n, alpha) >= power)


def seeds_for_equivalence(mean: float, sd: float, rope: float, alpha: float, power: float = POWER) -> int:
    """The fewest seeds with which two one-sided t-tests (TOST) show the difference within
    (-rope, rope) with probability `power`, if its true value is `mean`: the lower bound
    P(both reject) >= P(lower rejects) + P(upper rejects) - 1, each from the noncentral t.
    MAX_SEEDS + 1 when more are needed (always, when |mean| >= rope)."""
    if abs(mean) >= rope:
        return MAX_SEEDS + 1

    def enough(n: int) -> bool:
        df, se = n - 1, sd / math.sqrt(n)
        critical = stats.t.ppf(1 - alpha, df)
        # scipy's noncentral t returns NaN far in its tail, where (both ncp > 0 here) sf is 1.
        lower = np.nan_to_num(stats.nct.sf(critical, df, (mean + rope) / se), nan=1.0)
        upper = np.nan_to_num(stats.nct.sf(critical, df, (rope - mean) / se), nan=1.0)
        return lower + upper - 1 >= power

    return _fewest(enough)


def seeds_needed(differences: np.ndarray, rope: float, alpha: float, power: float = POWER) -> int | None:
    """Seeds in all that would settle the comparison at the observed mean and spread of the seeds'
    differences: enough to show equivalence when the observed difference lies within the ROPE,
    enough to detect it otherwise; None below 2 seeds (no spread to plan from)."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return None
    sd = d.std(ddof=1)
    if sd == 0:
        return int(d.size)
    if abs(d.mean()) < rope:
        return seeds_for_equivalence(d.mean(), sd, rope, alpha, power)
    return seeds_to_detect(d.mean(), sd, alpha, power)


def _fewest(enough) -> int:
    """The smallest n in [2, MAX_SEEDS] with enough(n) (monotone in n), by bisection; MAX_SEEDS + 1
    if none."""
    if not enough(MAX_SEEDS):
        return MAX_SEEDS + 1
    low, high = 2, MAX_SEEDS
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return low
