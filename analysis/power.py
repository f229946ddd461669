"""Power of the paired comparisons: the smallest difference the study's seeds could detect, and how
many seeds would settle a difference or an equivalence, from the observed spread of the differences.

All for the two-sided paired t-test at the family's level: `alpha / family` is Holm's first (its
strictest) threshold, so a difference of the minimum detectable effect is found with the stated
power whatever its place in the family."""

import math

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower

POWER = 0.8
#: Beyond this many seeds a plan is not a plan: the answer is "more than MAX_SEEDS".
MAX_SEEDS = 1000


def minimum_detectable_effect(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """The smallest true mean difference (in the scores' units) a two-sided paired t-test over `n`
    seeds detects with probability `power` at level `alpha`, for differences of standard deviation
    `sd`; NaN below 2 seeds or without spread."""
    if n < 2 or not sd > 0:
        return math.nan
    return float(TTestPower().solve_power(nobs=n, alpha=alpha, power=power, alternative="two-sided") * sd)


def seeds_to_detect(mean: float, sd: float, alpha: float, power: float = POWER) -> int:
    """The fewest seeds (>= 2) with which a two-sided paired t-test detects a true difference of
    `mean` (sd `sd`) with probability `power`; MAX_SEEDS + 1 when more than MAX_SEEDS are needed."""
    effect = abs(mean) / sd
    return _fewest(lambda n: TTestPower().power(effect, n, alpha, alternative="two-sided") >= power)


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
        lower = stats.nct.sf(critical, df, (mean + rope) / se)
        upper = stats.nct.sf(critical, df, (rope - mean) / se)
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
