"""Bayesian verdicts on one pair of rows: P(a better), P(practically equivalent), P(b better), with a
region of practical equivalence (ROPE) around a difference of zero, from baycomp (Benavoli, Corani,
Demšar and Zaffalon 2017, "Time for a change", JMLR 18).

Per dataset, over seeds: the posterior of the mean difference under the Jeffreys prior is Student's t
with n - 1 degrees of freedom, centred on the mean difference, of scale sd / sqrt(n) (baycomp's
`single.Posterior`). This is baycomp's correlated t-test with correlation 0: its Nadeau-Bengio term
corrects for cross-validation folds that share training data, whereas seeds here are independent
repetitions on one fixed split, so the term would only widen the posterior for nothing.

Across datasets, with the seeds as repeated measurements inside each: baycomp's hierarchical test
(Corani et al. 2017), which needs Stan (pystan 3). httpstan compiles the model the first time on a
machine (146 s on 2 shared cores here) and caches the build under ~/.cache/httpstan, after which a
pair takes about 9 s (4 chains x 2000 draws); so it runs only when asked for (`--hierarchical`),
and its test is marked slow. Otherwise, and where it cannot run (no Stan, one seed), baycomp's
Bayesian signed-rank test on the per-dataset means. Each result names the test it used."""

import contextlib
import importlib.util
import math
import tempfile
import warnings

import numpy as np

HIERARCHICAL = "Bayesian hierarchical correlated t-test (baycomp)"
SIGNED_RANK = "Bayesian signed-rank test on dataset means (baycomp)"
T_POSTERIOR = "Bayesian t-test over seeds (baycomp posterior, correlation 0)"
NO_SPREAD = "none: one seed, no spread"


def stan_available() -> bool:
    """Whether the hierarchical test can run here (pystan 3 installed)."""
    return importlib.util.find_spec("stan") is not None


def t_posterior(differences: np.ndarray, rope: float) -> tuple[float, float, float, str]:
    """(P(a better), P(equivalent), P(b better), test) from the seeds' differences a - b; NaN
    probabilities below 2 seeds. Constant differences give a posterior concentrated on their value."""
    from baycomp.single import Posterior

    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return math.nan, math.nan, math.nan, NO_SPREAD
    if np.ptp(d) == 0:
        value = d[0]
        return float(value > rope), float(abs(value) <= rope), float(value < -rope), T_POSTERIOR
    # baycomp's posterior is of y - x with p_left = P(y - x < -rope), "x better": here x = a, y = b.
    posterior = Posterior(-d.mean(), d.var(ddof=1) / d.size, d.size - 1, rope)
    left, middle, right = posterior.probs()
    return float(left), float(middle), float(right), T_POSTERIOR


def across_datasets(
    a: np.ndarray, b: np.ndarray, rope: float, hierarchical: bool, seed: int = 0, samples: int = 2000
) -> tuple[float, float, float, str]:
    """(P(a better), P(equivalent), P(b better), test) over datasets (rows) x seeds (columns) of the
    scores of a and b. The hierarchical test when asked for, Stan is installed and every dataset has
    the same number (>= 2) of seeds; else the Bayesian signed-rank test on dataset means."""
    import baycomp

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if hierarchical and stan_available() and a.shape[1] >= 2:
        with _quiet_in(tempfile.mkdtemp(prefix="gloss-baycomp-")):
            probs = baycomp.HierarchicalTest.probs(
                a, b, rope, runs=1, nsamples=samples, chains=4, random_state=seed
            )
        return (*map(float, probs), HIERARCHICAL)
    probs = baycomp.SignedRankTest.probs(
        a.mean(axis=1), b.mean(axis=1), rope, nsamples=samples * 5, random_state=seed
    )
    return (*map(float, probs), SIGNED_RANK)


@contextlib.contextmanager
def _quiet_in(folder: str):
    """baycomp pickles its last sample into the working directory and Stan prints its progress:
    run it in a folder of its own, its warnings silenced."""
    with contextlib.chdir(folder), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
