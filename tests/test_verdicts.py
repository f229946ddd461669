"""Verdicts, intervals and power (analysis.bayes, analysis.power, analysis.verdicts) against scipy,
statsmodels, baycomp called directly, a published worked example and simulation."""

import math
import shutil
import warnings
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from analysis.bayes import HIERARCHICAL, SIGNED_RANK, across_datasets, stan_available, t_posterior
from analysis.power import (
    MAX_SEEDS,
    minimum_detectable_effect,
    paired_power,
    seeds_for_equivalence,
    seeds_needed,
    seeds_to_detect,
)
from analysis.select import INTEGRATED, STANDALONE, protocol
from analysis.stats import (
    BCA_INTERVAL,
    MIN_BOOTSTRAP_N,
    T_INTERVAL,
    iman_davenport,
    mean_interval,
    t_interval,
)
from analysis.verdicts import compare_study, verdict

ROPE = 0.005
FIXTURE = Path(__file__).parent / "fixtures" / "study"


def final_frame(effects: dict[str, float], seeds: int, sd: float = 0.004, datasets=("mr", "r8"), seed=0):
    """Final results of a grid: rows named by `effects` (their true difference to ce), integrated
    unless the name starts with 'sa:' (then standalone: monitored the silhouette)."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset_index, dataset in enumerate(datasets):
        base = 0.8 + 0.02 * dataset_index + rng.normal(0, 0.01, seeds)
        for name, effect in {"ce": 0.0, **effects}.items():
            standalone = name.startswith("sa:")
            for s in range(seeds):
                rows.append(
                    {
                        "dataset": dataset,
                        "loss": name.removeprefix("sa:"),
                        "seed": s,
                        "phase": "grid",
                        "outcome": "completed",
                        "monitor": "val_silhouette" if standalone else "val_macro_f1",
                        "selected_test_macro_f1": base[s] + effect + rng.normal(0, sd),
                        "config/loss_params/sigma": 0.5 if "gloss" in name else None,
                    }
                )
    return pd.DataFrame(rows)


# ---- intervals -------------------------------------------------------------------------------------


def test_t_interval_is_scipy_students_t():
    values = np.array([0.9105, 0.9245, 0.9170])
    expected = sps.t.interval(0.95, 2, loc=values.mean(), scale=sps.sem(values))
    assert t_interval(values) == pytest.approx(expected, rel=1e-12)
    assert mean_interval(values) == pytest.approx((*expected, T_INTERVAL))


def test_interval_switches_to_bca_at_thirty_values():
    """Below MIN_BOOTSTRAP_N values the t interval, from there on scipy's BCa bootstrap."""
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=MIN_BOOTSTRAP_N - 1), rng.normal(size=MIN_BOOTSTRAP_N)
    assert mean_interval(few)[2] == T_INTERVAL
    low, high, method = mean_interval(many)
    bca = sps.bootstrap((many,), np.mean, method="BCa", rng=0, n_resamples=9999).confidence_interval
    assert method == BCA_INTERVAL and (low, high) == pytest.approx((bca.low, bca.high))


def test_t_interval_degenerate_inputs():
    assert all(math.isnan(x) for x in t_interval([0.5]))
    assert t_interval([0.7, 0.7]) == (0.7, 0.7)


# ---- Iman-Davenport ------------------------------------------------------------------------------


def test_iman_davenport_demsar_worked_example():
    """Demšar (2006) Sec. 3.2.2: chi2_F = 9.28 with k = 4, N = 14 gives F_F = 3.69 on (3, 39) df."""
    statistic, p = iman_davenport(9.28, 14, 4)
    assert round(statistic, 2) == 3.69
    assert p == pytest.approx(sps.f.sf(statistic, 3, 39))
    assert p < 0.05 < sps.chi2.sf(9.28, 3) * 2  # F is the less conservative of the two


def test_iman_davenport_is_undefined_when_every_block_ranks_alike():
    """chi2 at its maximum N (k - 1): F's denominator is 0; no p of 0 from two datasets."""
    statistic, p = iman_davenport(2.0, 2, 2)
    assert statistic == math.inf and math.isnan(p)


def test_compare_reports_iman_davenport_beside_friedman():
    scores = final_frame({"gloss": 0.02, "supcon": 0.0}, 3, datasets=("a", "b", "c", "d"))
    ranking = compare_study(scores).protocols[0].ranking
    expected = iman_davenport(ranking.friedman_statistic, ranking.n_blocks, len(ranking.methods))
    assert (ranking.iman_davenport_statistic, ranking.iman_davenport_p) == pytest.approx(expected)


# ---- power -----------------------------------------------------------------------------------------


def simulated_power(effect: float, n: int, alpha: float, studies: int = 20000) -> float:
    """The fraction of simulated studies whose paired t-test rejects, computed with scipy."""
    d = np.random.default_rng(4).normal(effect, 1.0, size=(studies, n))
    return float((sps.ttest_1samp(d, 0.0, axis=1).pvalue < alpha).mean())


@pytest.mark.parametrize(
    ("effect", "n", "alpha"), [(0.5, 10, 0.05), (1.2, 3, 0.05), (2.0, 5, 0.01), (0.1, 100, 0.05)]
)
def test_paired_power_is_statsmodels_ttestpower(effect, n, alpha):
    assert paired_power(effect, n, alpha) == pytest.approx(TTestPower().power(effect, n, alpha), abs=1e-9)


def test_paired_power_where_statsmodels_gives_nan():
    """Effect 0.83 over 100 seeds: statsmodels' power is NaN; ours is 1, as simulation says."""
    assert math.isnan(TTestPower().power(0.833, 100, 0.0125))
    assert paired_power(0.833, 100, 0.0125) == pytest.approx(1.0) == simulated_power(0.833, 100, 0.0125, 2000)


@pytest.mark.parametrize(("n", "alpha"), [(3, 0.05), (10, 0.01)])
def test_minimum_detectable_effect_is_statsmodels_solution(n, alpha):
    """At the MDE statsmodels' TTestPower gives power 0.8, and its own solve_power finds the same."""
    sd = 0.012
    mde = minimum_detectable_effect(sd, n, alpha)
    assert TTestPower().power(mde / sd, n, alpha) == pytest.approx(0.8, abs=1e-6)
    assert TTestPower().solve_power(nobs=n, alpha=alpha, power=0.8) * sd == pytest.approx(mde, rel=1e-5)
    assert math.isnan(minimum_detectable_effect(sd, 1, alpha))


@pytest.mark.parametrize(("n", "alpha"), [(2, 0.05 / 4), (3, 0.05 / 14)])
def test_minimum_detectable_effect_where_statsmodels_fails(n, alpha):
    """2 or 3 seeds with a Holm-strict alpha: the MDE is over 10 sd, beyond the bracket of statsmodels'
    solve_power, whose answer is off; simulated studies at our MDE reject in 80% of cases (+- 1.2%)."""
    mde = minimum_detectable_effect(1.0, n, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        solved = TTestPower().solve_power(nobs=n, alpha=alpha, power=0.8)
    assert solved != pytest.approx(mde, rel=0.01)
    assert paired_power(mde, n, alpha) == pytest.approx(0.8, abs=1e-6)
    assert simulated_power(mde, n, alpha) == pytest.approx(0.8, abs=0.012)


def test_seeds_to_detect_is_the_fewest_with_enough_power():
    n = seeds_to_detect(0.01, 0.012, 0.05 / 4)
    effect = 0.01 / 0.012
    assert TTestPower().power(effect, n, 0.05 / 4) >= 0.8 > TTestPower().power(effect, n - 1, 0.05 / 4)
    assert seeds_to_detect(1e-6, 0.05, 0.05) == MAX_SEEDS + 1


def test_seeds_for_equivalence_reach_the_power_in_simulation():
    """TOST at the planned seeds, simulated: the equivalence is shown in at least 80% of studies."""
    mean, sd, rope, alpha = 0.001, 0.004, ROPE, 0.05
    n = seeds_for_equivalence(mean, sd, rope, alpha)
    rng = np.random.default_rng(1)
    d = rng.normal(mean, sd, size=(4000, n))
    se = d.std(axis=1, ddof=1) / math.sqrt(n)
    critical = sps.t.ppf(1 - alpha, n - 1)
    shown = ((d.mean(axis=1) + rope) / se > critical) & ((rope - d.mean(axis=1)) / se > critical)
    assert shown.mean() >= 0.8
    assert seeds_for_equivalence(0.006, sd, rope, alpha) == MAX_SEEDS + 1  # outside the ROPE: never


def test_seeds_needed_picks_equivalence_inside_the_rope():
    inside, outside = np.array([0.001, 0.003, -0.001]), np.array([0.02, 0.03, 0.01])
    sd_in, sd_out = inside.std(ddof=1), outside.std(ddof=1)
    assert seeds_needed(inside, ROPE, 0.05) == seeds_for_equivalence(inside.mean(), sd_in, ROPE, 0.05)
    assert seeds_needed(outside, ROPE, 0.05) == seeds_to_detect(outside.mean(), sd_out, 0.05)
    assert seeds_needed(np.array([0.01]), ROPE, 0.05) is None


# ---- Bayesian tests -------------------------------------------------------------------------------


def test_t_posterior_is_the_students_t_posterior_by_hand():
    """P(a better) = P(delta > rope) under t(n - 1, mean d, sd / sqrt(n)), computed with scipy."""
    d = np.array([0.012, 0.004, 0.009, 0.001])
    posterior = sps.t(len(d) - 1, d.mean(), d.std(ddof=1) / math.sqrt(len(d)))
    expected = (posterior.sf(ROPE), posterior.cdf(ROPE) - posterior.cdf(-ROPE), posterior.cdf(-ROPE))
    p_a, p_e, p_b, _ = t_posterior(d, ROPE)
    assert (p_a, p_e, p_b) == pytest.approx(expected, rel=1e-9)
    assert t_posterior(-d, ROPE)[:3] == pytest.approx(expected[::-1], rel=1e-9)  # the pair reversed
    assert all(math.isnan(p) for p in t_posterior(d[:1], ROPE)[:3])


def test_signed_rank_across_datasets_is_baycomps():
    import baycomp

    rng = np.random.default_rng(2)
    a = rng.normal(0.8, 0.01, (6, 3))
    b = a - 0.01 + rng.normal(0, 0.003, (6, 3))
    probs = across_datasets(a, b, ROPE, hierarchical=False)
    expected = baycomp.SignedRankTest.probs(
        a.mean(axis=1), b.mean(axis=1), ROPE, nsamples=10000, random_state=0
    )
    assert probs[:3] == pytest.approx(tuple(expected)) and probs[3] == SIGNED_RANK
    assert probs[0] > 0.9  # a is better by 1 point on every dataset


@pytest.mark.slow
@pytest.mark.skipif(not stan_available(), reason="the hierarchical test needs pystan 3")
def test_hierarchical_test_agrees_with_baycomp_called_directly(tmp_path, monkeypatch):
    """Our call of baycomp's hierarchical test and baycomp's own on the same data agree within the
    Monte Carlo error of Stan's sampling; a clear 1-point advantage on 5 datasets is found. Compiling
    the Stan model the first time takes a minute or more (httpstan caches it)."""
    import baycomp

    rng = np.random.default_rng(3)
    a = rng.normal(0.8, 0.01, (5, 3))
    b = a - 0.01 + rng.normal(0, 0.004, (5, 3))
    ours = across_datasets(a, b, ROPE, hierarchical=True)
    monkeypatch.chdir(tmp_path)
    theirs = baycomp.HierarchicalTest.probs(a, b, ROPE, runs=1, nsamples=2000, chains=4, random_state=0)
    assert ours[3] == HIERARCHICAL
    assert ours[:3] == pytest.approx(tuple(theirs), abs=0.05)
    assert ours[0] > 0.8


# ---- protocols and the study comparison ----------------------------------------------------------


def test_protocol_follows_the_records_selection_metric_not_row_names():
    frame = pd.DataFrame({"loss": ["gloss", "gloss"], "monitor": ["val_macro_f1", "val_silhouette"]})
    assert protocol(frame).tolist() == [INTEGRATED, STANDALONE]
    old = pd.DataFrame({"loss": ["x", "y"], "loss_lambda": [0.7, 1.0]})
    assert protocol(old).tolist() == [INTEGRATED, STANDALONE]


def test_integrated_and_standalone_rows_are_separate_comparisons():
    final = final_frame({"gloss": 0.02, "sa:gloss_o": 0.01, "sa:triplet": 0.0}, 3, datasets=("a", "b", "c"))
    result = compare_study(final)
    by_name = {p.protocol: p for p in result.protocols}
    assert set(by_name) == {INTEGRATED, STANDALONE}
    assert set(by_name[INTEGRATED].ranking.methods) == {"ce", "gloss"}
    assert set(by_name[STANDALONE].ranking.methods) == {"gloss_o", "triplet"}
    assert by_name[STANDALONE].reference is None  # no ce there: all pairs
    # Control: the same rows as one protocol would rank all four together.
    merged = compare_study(final.assign(monitor="val_macro_f1"))
    assert len(merged.protocols) == 1 and len(merged.protocols[0].ranking.methods) == 4
    together = compare_study(final, split=False)  # the user's choice: one experiment
    assert [p.protocol for p in together.protocols] == ["all"]
    assert len(together.protocols[0].ranking.methods) == 4


def test_verdicts_better_equivalent_and_undecided():
    final = final_frame({"gloss": 0.03, "supcon": 0.0, "scl": 0.004}, 10, sd=0.001)
    pairs = compare_study(final).protocols[0].pairs.set_index(["dataset", "a"])
    assert pairs.loc[("mr", "gloss"), "verdict"].startswith("gloss better with probability")
    assert pairs.loc[("mr", "supcon"), "verdict"].startswith("equivalent within 0.5 points")
    few = compare_study(final_frame({"scl": 0.004}, 3, sd=0.004))
    row = few.protocols[0].pairs.iloc[0]
    assert row["verdict"] == f"undecided: add {row['seeds_needed'] - 3} seeds"
    assert few.underpowered and few.power_sentence().startswith("Underpowered")
    assert not compare_study(final).underpowered


def test_correction_covers_the_whole_table():
    final = final_frame({"gloss": 0.01, "supcon": 0.0, "scl": 0.004}, 4)
    result = compare_study(final, correction="bonferroni")
    pairs = result.protocols[0].pairs
    assert len(pairs) == 6  # 2 datasets x 3 pairs in one family
    np.testing.assert_allclose(pairs["p_adjusted"], multipletests(pairs["p"], method="bonferroni")[1])
    assert "6 tests" in result.protocols[0].family


def test_effect_interval_is_the_t_interval_of_the_differences():
    final = final_frame({"gloss": 0.01}, 3)
    row = compare_study(final).protocols[0].pairs.iloc[0]
    wide = final[final["dataset"] == row["dataset"]].pivot(
        index="seed", columns="loss", values="selected_test_macro_f1"
    )
    d = wide["gloss"] - wide["ce"]
    expected = sps.t.interval(0.95, 2, loc=d.mean(), scale=sps.sem(d))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected) and row["interval"] == T_INTERVAL


def test_one_seed_is_undecided_without_a_plan():
    result = compare_study(final_frame({"gloss": 0.01}, 1))
    row = result.protocols[0].pairs.iloc[0]
    assert row["verdict"].startswith("undecided: one seed")
    assert result.fewest_seeds == 1 and "1 seed," in result.power_sentence()


def test_result_is_immutable_and_lists_configurations_and_scores():
    result = compare_study(final_frame({"gloss": 0.01}, 3))
    with pytest.raises(FrozenInstanceError):
        result.rope = 0.1
    assert result.configurations.loc[(INTEGRATED, "mr", "gloss"), "sigma"] == "0.5"
    assert len(result.per_seed_scores()) == 2 * 2 * 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rope": 0.5}, "rope"),
        ({"alpha": 0}, "alpha"),
        ({"correction": "nope"}, "correction"),
        ({"decision": 0.4}, "decision"),
    ],
)
def test_bad_settings_fail_with_a_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare_study(final_frame({"gloss": 0.01}, 3), **kwargs)


def test_verdict_wording():
    pair = {"a": "x", "b": "y", "n": 3, "p_a_better": 0.2, "p_equivalent": 0.3, "p_b_better": 0.5}
    assert verdict({**pair, "seeds_needed": 12}, ROPE, 0.95) == "undecided: add 9 seeds"
    assert verdict({**pair, "seeds_needed": MAX_SEEDS + 1}, ROPE, 0.95).startswith("undecided: more than")


# ---- gloss analyze --------------------------------------------------------------------------------


def two_protocol_study(tmp_path: Path) -> Path:
    """The fixture study whose supcon rows monitored the silhouette (standalone), beside a copy of
    them named triplet, so each protocol has two rows."""
    study = Path(shutil.copytree(FIXTURE, tmp_path / "study"))
    for trial in (study / "grid").glob("*-supcon-*"):
        copy = trial.with_name(trial.name.replace("supcon", "triplet"))
        shutil.copytree(trial, copy)
        for folder, name in ((trial, "supcon"), (copy, "triplet")):
            text = (folder / "result.json").read_text().replace('"supcon"', f'"{name}"')
            (folder / "result.json").write_text(
                text.replace('"val_macro_f1", "selected', '"val_silhouette", "selected')
            )
    return study


def test_gloss_analyze_prints_two_comparisons(tmp_path, capsys):
    """Integrated and standalone rows: two comparisons, each with probabilities, intervals, the
    detectable difference and the verdict (seeds to add where undecided)."""
    from study.cli import main

    study = two_protocol_study(tmp_path)
    assert main(["analyze", str(study), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "integrated rows (selected on validation macro-F1" in out
    assert "standalone rows (selected on validation silhouette" in out
    assert out.count("P(a better)") >= 2 and "a - b, points [95% CI]" in out and "detectable, points" in out
    assert "undecided: add" in out and "Underpowered" in out and "Iman-Davenport" in out
    assert main(["analyze", str(study), "--summary", "--together"]) == 0
    together = capsys.readouterr().out
    assert (
        "all rows (integrated and standalone rows together" in together
        and "standalone rows (" not in together
    )


@pytest.mark.parametrize(("flag", "value"), [("--rope", "50"), ("--correction", "nope")])
def test_gloss_analyze_refuses_bad_settings_before_reading(flag, value, tmp_path, capsys):
    from study.cli import main

    assert main(["analyze", str(tmp_path / "missing"), flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_hierarchical_without_stan_falls_back_and_says_which_test(monkeypatch):
    """Asked for the hierarchical test where Stan is missing: the signed-rank test, named as such."""
    import analysis.bayes

    monkeypatch.setattr(analysis.bayes, "stan_available", lambda: False)
    result = compare_study(final_frame({"gloss": 0.01}, 3, datasets=("a", "b", "c")), hierarchical=True)
    assert set(result.protocols[0].across["test"]) == {SIGNED_RANK}
