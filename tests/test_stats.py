"""analysis.stats against published worked examples, against scipy/statsmodels called directly, and on
synthetic data with a known answer."""

import math
from dataclasses import FrozenInstanceError

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from analysis.stats import (
    PAIRWISE_COLUMNS,
    T_INTERVAL,
    T_TEST,
    WILCOXON,
    bootstrap_ci,
    cohens_dz,
    compare,
    critical_difference,
    paired_test,
    seed_summary,
)

# Demšar (2006), "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7:1-30, Table 6:
# AUC of C4.5, C4.5+m, C4.5+cf and C4.5+m+cf on 14 UCI data sets (Table 2 holds its first two columns).
DEMSAR_TABLE_6 = pd.DataFrame.from_dict(
    {
        "adult (sample)": (0.763, 0.768, 0.771, 0.798),
        "breast cancer": (0.599, 0.591, 0.590, 0.569),
        "breast cancer wisconsin": (0.954, 0.971, 0.968, 0.967),
        "cmc": (0.628, 0.661, 0.654, 0.657),
        "ionosphere": (0.882, 0.888, 0.886, 0.898),
        "iris": (0.936, 0.931, 0.916, 0.931),
        "liver disorders": (0.661, 0.668, 0.609, 0.685),
        "lung cancer": (0.583, 0.583, 0.563, 0.625),
        "lymphography": (0.775, 0.838, 0.866, 0.875),
        "mushroom": (1.000, 1.000, 1.000, 1.000),
        "primary tumor": (0.940, 0.962, 0.965, 0.962),
        "rheum": (0.619, 0.666, 0.614, 0.669),
        # Printed as 0.975 and 0.975 but ranked (2) and (3) in the paper: the unrounded AUCs differ.
        # Like scipy's own test of friedmanchisquare on this table, 0.9751 restores the published order.
        "voting": (0.972, 0.981, 0.9751, 0.975),
        "wine": (0.957, 0.978, 0.946, 0.970),
    },
    orient="index",
    columns=["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"],
)

# Student (1908) / Cushny & Peebles (1905) sleep data, R's `datasets::sleep`: extra hours of sleep of the
# same 10 patients under drug 1 and drug 2.
SLEEP_DRUG_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_DRUG_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def demsar_chi2_f(mean_ranks: np.ndarray, n: int) -> float:
    """Demšar's Friedman statistic from mean ranks (his eq. in Section 3.2.2, no tie correction)."""
    k = len(mean_ranks)
    return 12 * n / (k * (k + 1)) * (np.sum(np.square(mean_ranks)) - k * (k + 1) ** 2 / 4)


def nemenyi_q(k: int, alpha: float) -> float:
    """q_alpha recovered from critical_difference by dividing out sqrt(k(k+1) / 6N) at N = 1."""
    return critical_difference(k, 1, alpha) / math.sqrt(k * (k + 1) / 6)


def synthetic(n_blocks: int, seed: int = 0) -> pd.DataFrame:
    """Scores over n_blocks: A = B + 0.02 (+ small noise), and C, D = B plus independent noise only."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.6, 0.9, n_blocks)
    return pd.DataFrame(
        {
            "A": base + 0.02 + rng.normal(0, 0.003, n_blocks),
            "B": base,
            "C": base + rng.normal(0, 0.01, n_blocks),
            "D": base + rng.normal(0, 0.01, n_blocks),
        }
    )


# ---- published worked examples -------------------------------------------------------------------


def test_demsar_friedman_example_mean_ranks_chi2_and_iman_davenport():
    """Demšar (2006) Sec. 3.2.2, Table 6: mean ranks 3.143, 2.000, 2.893, 1.964; chi2_F = 9.28; F_F = 3.69,
    above F(3, 39)'s 5 % critical value 2.85, so the null hypothesis is rejected."""
    result = compare(DEMSAR_TABLE_6)
    assert result.n_blocks == 14
    np.testing.assert_allclose(result.mean_ranks, [3.143, 2.000, 2.893, 1.964], atol=5e-4)
    chi2_f = demsar_chi2_f(result.mean_ranks.to_numpy(), 14)
    f_f = 13 * chi2_f / (14 * 3 - chi2_f)
    assert round(chi2_f, 2) == 9.28
    assert round(f_f, 2) == 3.69
    assert round(sps.f.ppf(0.95, 3, 39), 2) == 2.85
    # Our statistic is tie-corrected (iris, lung cancer, mushroom, primary tumor have ties), hence >= 9.28,
    # and equals scipy's, whose test-suite reference for this table is 10.2283464566929, p = 0.01672.
    assert result.friedman_statistic > chi2_f
    assert result.friedman_statistic == pytest.approx(10.2283464566929, rel=1e-12)
    assert result.friedman_p == pytest.approx(0.0167215803284414, rel=1e-10)
    # Iman-Davenport's F beside it, from our (tie-corrected) chi-squared by Demšar's formula.
    f_f = 13 * result.friedman_statistic / (14 * 3 - result.friedman_statistic)
    assert result.iman_davenport_statistic == pytest.approx(f_f)
    assert result.iman_davenport_p == pytest.approx(sps.f.sf(f_f, 3, 39)) and result.iman_davenport_p < 0.05


def test_demsar_nemenyi_critical_differences():
    """Demšar (2006) Sec. 3.2.2: for 4 methods on 14 data sets CD = 1.25 at alpha 0.05 (no pair differs) and
    CD = 1.12 at 0.10, where C4.5 is worse than C4.5+m and C4.5+m+cf, and C4.5+cf is undecided."""
    at_05 = compare(DEMSAR_TABLE_6, alpha=0.05)
    at_10 = compare(DEMSAR_TABLE_6, alpha=0.10)
    assert round(at_05.critical_difference, 2) == 1.25
    assert round(at_10.critical_difference, 2) == 1.12
    ranks = at_10.mean_ranks
    assert ranks.max() - ranks.min() < at_05.critical_difference
    assert ranks["C4.5"] - ranks["C4.5+m"] > at_10.critical_difference
    assert ranks["C4.5"] - ranks["C4.5+m+cf"] > at_10.critical_difference
    assert ranks["C4.5"] - ranks["C4.5+cf"] < at_10.critical_difference
    assert ranks["C4.5+cf"] - ranks["C4.5+m+cf"] < at_10.critical_difference


@pytest.mark.parametrize(
    ("alpha", "table"),
    [
        (0.05, [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]),
        (0.10, [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]),
    ],
)
def test_demsar_q_alpha_table(alpha, table):
    """Demšar (2006) Table 5(a), Nemenyi q_alpha for k = 2..10. The printed values deviate from the exact
    studentized-range quantile / sqrt(2) by up to 7e-4 (e.g. k = 3: 2.343 printed, 2.3437 exact)."""
    np.testing.assert_allclose([nemenyi_q(k, alpha) for k in range(2, 11)], table, atol=1e-3)


def test_nemenyi_cd_five_methods_five_data_sets():
    """With k = N = 5, sqrt(k(k+1)/6N) = 1, so the CD is Demšar's q_0.05 = 2.728 itself: 2.73 ranks."""
    assert critical_difference(5, 5) == pytest.approx(nemenyi_q(5, 0.05))
    assert round(critical_difference(5, 5), 2) == 2.73


def test_demsar_wilcoxon_example():
    """Demšar (2006) Sec. 3.1.3, Table 2, C4.5+m vs C4.5 on 14 data sets: zero differences split, R+ = 93,
    R- = 12, T = min = 12 <= 21 (the exact 5 % critical value for N = 14): the difference is significant."""
    result = compare(DEMSAR_TABLE_6[["C4.5+m", "C4.5"]], baseline="C4.5")
    row = result.pairwise.iloc[0]
    assert (row["a"], row["b"], row["test"]) == ("C4.5+m", "C4.5", WILCOXON)
    assert row["statistic"] == 12.0
    assert 14 * 15 / 2 - row["statistic"] == 93.0
    assert row["p"] < 0.05 and row["effect_size"] > 0
    assert row["p_holm"] == row["p"]  # one comparison: nothing to adjust


def test_demsar_holm_example():
    """Demšar (2006) Sec. 3.2.2, C4.5 as control: SE = 0.488; z = 2.416, 2.342, 0.512; p = 0.016, 0.019,
    0.607; Holm compares them with 0.017, 0.025, 0.050 and rejects the first two hypotheses only."""
    ranks = {"C4.5": 3.143, "C4.5+m+cf": 1.964, "C4.5+m": 2.000, "C4.5+cf": 2.893}
    se = math.sqrt(4 * 5 / (6 * 14))
    z = np.array([(ranks["C4.5"] - ranks[m]) / se for m in ("C4.5+m+cf", "C4.5+m", "C4.5+cf")])
    assert round(se, 3) == 0.488
    np.testing.assert_allclose(z, [2.416, 2.342, 0.512], atol=1e-3)
    # The printed third p (0.607) is off in its last digit: 2 * (1 - Phi(0.512)) = 0.6087.
    published_p = [0.016, 0.019, 0.607]
    assert (np.abs(2 * sps.norm.sf(z) - published_p) < [5e-4, 5e-4, 2e-3]).all()
    reject, p_holm, *_ = multipletests(published_p, alpha=0.05, method="holm")
    assert reject.tolist() == [True, True, False]
    np.testing.assert_allclose(p_holm, [3 * 0.016, 3 * 0.016, 0.607])  # step-down, kept monotone


def test_student_sleep_paired_t_test():
    """Student's sleep data, R's `example(t.test)` (paired): t = -4.0621, df = 9, p-value = 0.002833,
    mean of the differences -1.58."""
    test, statistic, p = paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, test=T_TEST)
    assert test == T_TEST
    assert round(statistic, 4) == -4.0621
    assert round(p, 6) == 0.002833
    assert np.mean(SLEEP_DRUG_1 - SLEEP_DRUG_2) == pytest.approx(-1.58)


def test_zar_friedman_example():
    """Zar, Biostatistical Analysis, Example 12.6, as quoted in scipy's friedmanchisquare tests: 4 treatments
    in 5 blocks, chi2_r = 10.68 (Zar's 0.005 < p < 0.01 is from the exact table; chi-square gives 0.0136)."""
    treatments = [
        [7.0, 9.9, 8.5, 5.1, 10.3],
        [5.3, 5.7, 4.7, 3.5, 7.7],
        [4.9, 7.6, 5.5, 2.8, 8.4],
        [8.8, 8.9, 8.1, 3.3, 9.1],
    ]
    result = compare(pd.DataFrame(np.array(treatments).T, columns=list("ABCD")))
    assert result.friedman_statistic == pytest.approx(10.68)
    assert result.friedman_p == pytest.approx(0.0135882729582176, rel=1e-10)
    assert result.n_blocks == 5 and set(result.pairwise["test"]) == {T_TEST}


# ---- agreement with the libraries called directly ------------------------------------------------


def test_friedman_agrees_with_scipy_including_ties():
    """Our tie-corrected Friedman statistic (ours, so that 2 methods work too) equals scipy's for k >= 3.

    16 blocks keep it fast: below 14, scipy's Wilcoxon with tied differences enumerates all sign flips."""
    rng = np.random.default_rng(1)
    for k in (3, 4, 6):
        scores = pd.DataFrame(rng.integers(0, 4, size=(16, k)) / 4)  # coarse: many ties within blocks
        result = compare(scores)
        expected = sps.friedmanchisquare(*scores.to_numpy().T)
        assert result.friedman_statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert result.friedman_p == pytest.approx(expected.pvalue, rel=1e-10)


def test_friedman_two_methods_is_the_sign_test_chi_square():
    """With k = 2 and no ties, Friedman's chi-square is (wins - losses)^2 / N, the sign test's."""
    scores = synthetic(10)[["A", "C"]]
    wins = int((scores["A"] > scores["C"]).sum())
    assert compare(scores).friedman_statistic == pytest.approx((wins - (10 - wins)) ** 2 / 10)


def test_all_tied_blocks_give_no_evidence():
    """Every block fully tied: Friedman statistic 0, p 1; pairwise p 1 and effect size 0."""
    result = compare(pd.DataFrame({"A": [0.5] * 7, "B": [0.5] * 7}))
    assert (result.friedman_statistic, result.friedman_p) == (0.0, 1.0)
    assert result.pairwise.loc[0, "p"] == 1.0 and result.pairwise.loc[0, "effect_size"] == 0.0


def test_pairwise_agrees_with_ttest_rel_below_six_blocks():
    """n = 5 blocks: every row is scipy.stats.ttest_rel(a, b) and d_z = mean(a - b) / sd(a - b)."""
    scores = synthetic(5)
    result = compare(scores)
    for row in result.pairwise.itertuples():
        expected = sps.ttest_rel(scores[row.a], scores[row.b])
        d = scores[row.a] - scores[row.b]
        assert row.test == T_TEST
        assert row.statistic == pytest.approx(expected.statistic, rel=1e-9)
        assert row.p == pytest.approx(expected.pvalue, rel=1e-9)
        assert row.effect_size == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-9)


def test_pairwise_agrees_with_wilcoxon_from_six_blocks():
    """n = 6 (and 10) blocks: every row is scipy.stats.wilcoxon(a, b, zero_method='zsplit')."""
    for n in (6, 10):
        scores = synthetic(n)
        for row in compare(scores).pairwise.itertuples():
            expected = sps.wilcoxon(scores[row.a], scores[row.b], zero_method="zsplit")
            assert row.test == WILCOXON
            assert (row.statistic, row.p) == pytest.approx((expected.statistic, expected.pvalue))


def test_holm_column_is_statsmodels_holm_of_p():
    """p_holm is statsmodels' multipletests(method='holm') across the pairwise rows."""
    result = compare(synthetic(8))
    expected = multipletests(result.pairwise["p"], method="holm")[1]
    np.testing.assert_allclose(result.pairwise["p_holm"], expected)


def test_wilcoxon_cannot_reach_five_percent_with_five_blocks():
    """Why n < 6 uses the t-test: with 5 blocks all of one sign, the exact two-sided Wilcoxon p is its
    minimum 2 / 2^5 = 0.0625; with 6 it is 2 / 2^6 = 0.03125."""
    assert sps.wilcoxon([0.01, 0.02, 0.03, 0.04, 0.05]).pvalue == pytest.approx(0.0625)
    assert sps.wilcoxon([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]).pvalue == pytest.approx(0.03125)


# ---- synthetic data with a known answer ----------------------------------------------------------


def test_known_effect_is_found_with_the_right_sign():
    """A = B + 0.02 over 10 blocks: Wilcoxon, positive d_z, significant after Holm; C and D (noise) not."""
    result = compare(synthetic(10), baseline="B")
    table = result.pairwise.set_index("a")
    assert result.methods == ("A", "B", "C", "D") and result.baseline == "B"
    assert list(table.index) == ["A", "C", "D"] and set(table["b"]) == {"B"}
    assert set(table["test"]) == {WILCOXON}
    assert table.loc["A", "effect_size"] > 3 and table.loc["A", "p_holm"] < 0.05
    assert (table.loc[["C", "D"], "p_holm"] >= 0.05).all()
    assert result.significant()["a"].tolist() == ["A"]
    assert result.mean_ranks.idxmin() == "A"


def test_reversed_pair_flips_the_effect_size():
    """All pairs in column order (a before b); d_z is of a - b, so B against A is negative."""
    result = compare(synthetic(10)[["B", "A"]])
    row = result.pairwise.iloc[0]
    assert (row["a"], row["b"]) == ("B", "A") and row["effect_size"] < 0 and row["p"] < 0.05


def test_pure_noise_is_not_significant():
    """Two methods differing only by independent noise: nothing significant at 5 % after Holm."""
    rng = np.random.default_rng(7)
    scores = pd.DataFrame(rng.normal(0.8, 0.01, size=(12, 3)), columns=["X", "Y", "Z"])
    result = compare(scores)
    assert len(result.pairwise) == 3 and result.significant().empty
    assert result.friedman_p > 0.05


def test_test_switches_at_six_blocks():
    """Five blocks give the paired t-test, six give Wilcoxon (both in compare and in paired_test)."""
    assert set(compare(synthetic(5)).pairwise["test"]) == {T_TEST}
    assert set(compare(synthetic(6)).pairwise["test"]) == {WILCOXON}
    assert paired_test(np.arange(5.0), np.zeros(5))[0] == T_TEST
    assert paired_test(np.arange(6.0), np.zeros(6))[0] == WILCOXON


def test_effect_size_edge_cases():
    """d_z is 0 for all-zero differences and an infinity of the differences' sign for constant ones."""
    assert cohens_dz(np.zeros(4)) == 0.0
    assert cohens_dz(np.full(4, 0.02)) == math.inf
    assert cohens_dz(np.full(4, -0.02)) == -math.inf
    d = SLEEP_DRUG_2 - SLEEP_DRUG_1
    assert cohens_dz(d) == pytest.approx(d.mean() / d.std(ddof=1))


def test_constant_difference_t_test_is_decisive_without_warnings():
    """A constant non-zero difference over 4 blocks: t infinite, p 0 (scipy alone would warn)."""
    test, statistic, p = paired_test(np.array([0.72, 0.81, 0.66, 0.9]), np.array([0.7, 0.79, 0.64, 0.88]))
    assert (test, statistic, p) == (T_TEST, math.inf, 0.0)


# ---- the result object and bad inputs ------------------------------------------------------------


def test_comparison_is_immutable_and_well_formed():
    """The result is a frozen dataclass; pairwise has exactly the documented columns."""
    result = compare(synthetic(6))
    with pytest.raises(FrozenInstanceError):
        result.alpha = 0.1
    assert list(result.pairwise.columns) == PAIRWISE_COLUMNS
    assert len(result.pairwise) == 6  # all 4 * 3 / 2 pairs
    assert result.mean_ranks.sum() == pytest.approx(4 * 5 / 2)


def test_rows_with_missing_values_are_dropped():
    """A block with any missing score is dropped before every test."""
    scores = synthetic(8)
    scores.iloc[2, 1] = np.nan
    result = compare(scores)
    assert result.n_blocks == 7
    assert result.friedman_statistic == compare(scores.dropna()).friedman_statistic


@pytest.mark.parametrize(
    ("scores", "kwargs", "message"),
    [
        (synthetic(6)[["A"]], {}, "at least 2 methods"),
        (pd.DataFrame({"A": [0.1, np.nan, 0.3], "B": [0.2, 0.3, np.nan]}), {}, "at least 2 blocks"),
        (synthetic(6), {"baseline": "E"}, "baseline 'E'"),
        (synthetic(6), {"alpha": 1.0}, "alpha"),
        (synthetic(6).rename(columns={"B": "A"}), {}, "duplicate"),
        (np.ones((5, 2)), {}, "DataFrame"),
    ],
)
def test_bad_inputs_raise_value_error(scores, kwargs, message):
    """Too few methods or complete blocks, an unknown baseline, alpha outside (0, 1), duplicate names."""
    with pytest.raises(ValueError, match=message):
        compare(scores, **kwargs)


def test_unknown_test_name_is_rejected():
    """paired_test accepts only its two test names."""
    with pytest.raises(ValueError, match="test must be"):
        paired_test(np.ones(3), np.zeros(3), test="sign test")


# ---- bootstrap and per-seed summary --------------------------------------------------------------


def test_bootstrap_ci_is_scipy_bca_and_seeded():
    """bootstrap_ci is scipy.stats.bootstrap(method='BCa') of the mean with the given seed."""
    values = synthetic(10)["C"].to_numpy()
    expected = sps.bootstrap((values,), np.mean, method="BCa", confidence_level=0.9, rng=3)
    ci = expected.confidence_interval
    assert bootstrap_ci(values, confidence=0.9, seed=3) == (ci.low, ci.high)
    assert bootstrap_ci(values) == bootstrap_ci(values)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high


def test_bootstrap_ci_degenerate_inputs():
    """Fewer than 3 values: (nan, nan); all values equal v: (v, v); NaN values are ignored."""
    assert all(math.isnan(x) for x in bootstrap_ci([0.5, 0.6]))
    assert bootstrap_ci([0.7, 0.7, 0.7]) == (0.7, 0.7)
    assert bootstrap_ci([0.1, np.nan, 0.2, 0.4]) == bootstrap_ci([0.1, 0.2, 0.4])


def test_seed_summary():
    """Per method: mean, std (ddof=1), t interval (fewer than 30 seeds) and n over the non-missing seeds."""
    scores = synthetic(6)
    scores.iloc[0, 3] = np.nan
    summary = seed_summary(scores)
    assert list(summary.columns) == ["mean", "std", "ci_low", "ci_high", "interval", "n"]
    assert summary.index.name == "method" and list(summary.index) == list(scores.columns)
    np.testing.assert_allclose(summary["mean"], scores.mean())
    np.testing.assert_allclose(summary["std"], scores.std(ddof=1))
    assert summary["n"].tolist() == [6, 6, 6, 5]
    d = scores["D"].dropna()
    expected = sps.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    assert summary.loc["D", ["ci_low", "ci_high"]].tolist() == pytest.approx(expected)
    assert set(summary["interval"]) == {T_INTERVAL}
    assert (summary["ci_low"] < summary["mean"]).all() and (summary["mean"] < summary["ci_high"]).all()
