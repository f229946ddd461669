"""Analysis on a real small study (tests/fixtures/study): loading and its cache, model selection,
curves, tables, figures and the report, without Ray."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import final_results, load_runs, outcome_note, summary_table
from analysis import load as load_module
from analysis.curves import curves, search_history, trial_convergence
from analysis.paper import paper_caveat, paper_table
from analysis.plots import (
    ablation_figure,
    cd_diagram,
    convergence_figure,
    embeddings_figure,
    save_figure,
    search_history_figure,
)
from analysis.report import build_report, seed_reuse_note, unsearched_note
from analysis.stats import compare
from analysis.tables import BETTER, ablation_levels, results_table

FIXTURE = Path(__file__).parent / "fixtures" / "study"


@pytest.fixture
def study(tmp_path) -> Path:
    """A writable copy of the fixture study."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "study"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> pd.DataFrame:
    return load_runs(shutil.copytree(FIXTURE, tmp_path_factory.mktemp("s") / "study"))


@pytest.fixture(scope="module")
def final(runs) -> pd.DataFrame:
    return final_results(runs)


def test_records_become_one_row_per_trial_and_epoch(runs):
    assert runs["trial_dir"].nunique() == 30
    assert set(runs["phase"]) == {"grid", "search", "ablation"}
    assert {
        "dataset",
        "loss",
        "seed",
        "epoch",
        "val_macro_f1",
        "config/lr",
        "config/loss_params/sigma",
    } <= set(runs)
    epochs = runs.groupby("trial_dir")["epoch"].agg(["min", "max", "count"])
    assert (epochs["min"] == 1).all() and (epochs["max"] == epochs["count"]).all()


def test_final_results_take_the_best_validation_epoch(runs, final):
    assert len(final) == 30
    done = final[final["outcome"].isin(["completed", "early_stopped"])]
    for row in done.itertuples():
        trial = runs[runs["trial_dir"] == row.trial_dir]
        best = trial.loc[trial[row.monitor].idxmax()]
        assert row.epoch == best["epoch"] and row.selected_test_macro_f1 == best["test_macro_f1"]
    diverged = final[final["outcome"] == "diverged"]
    assert len(diverged) == 2 and diverged["selected_test_macro_f1"].isna().all()


def test_second_load_reads_the_cache_and_a_changed_trial_alone(study, monkeypatch):
    first = load_runs(study)
    reads = []
    original = load_module.read_trial
    monkeypatch.setattr(
        load_module, "read_trial", lambda fs, trial: reads.append(trial.location) or original(fs, trial)
    )
    pd.testing.assert_frame_equal(load_runs(study), first)
    assert reads == []
    changed = sorted((study / "grid").iterdir())[0]
    before = final_results(first).set_index("trial_dir").loc[str(changed), "outcome"]
    (changed / "error.txt").write_text(
        "Failure # 1 (occurred at x)\nTraceback ...\nRuntimeError: out of memory\n"
    )
    again = load_runs(study)
    assert reads == [str(changed)]
    assert set(again.loc[again["trial_dir"] == str(changed), "error"]) == {"RuntimeError: out of memory"}
    recovered = final_results(again).set_index("trial_dir").loc[str(changed)]
    assert (recovered["outcome"], recovered["restarts"]) == (before, 1), "its last state counts"


def test_a_trial_is_failed_only_when_it_ended_on_an_error(study):
    final = final_results(load_runs(study))
    trial = final[final["outcome"] == "completed"].iloc[0]
    folder = Path(trial["trial_dir"])
    lines = (folder / "result.json").read_text().splitlines()
    last = {**json.loads(lines[-1]), "status": "running"}
    (folder / "result.json").write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    (folder / "error.txt").write_text(
        "Failure # 1 (x)\nE\nFailure # 2 (x)\nE\nFailure # 3 (x)\nRuntimeError: gave up\n"
    )
    failed = final_results(load_runs(study)).set_index("trial_dir").loc[str(folder)]
    assert (failed["outcome"], failed["error"], failed["restarts"]) == ("failed", "RuntimeError: gave up", 2)
    assert "1 failed; first error: RuntimeError: gave up" in outcome_note(final_results(load_runs(study)))


def test_removed_trials_leave_and_a_broken_cache_is_rebuilt(study):
    load_runs(study)
    removed = sorted((study / "search").iterdir())[0]
    shutil.rmtree(removed)
    assert str(removed) not in set(load_runs(study)["trial_dir"])
    (study / ".gloss-analysis" / "runs.parquet").write_bytes(b"half a file")
    assert load_runs(study)["trial_dir"].nunique() == 29


def test_a_trial_that_failed_before_reporting_is_kept(study):
    broken = study / "grid" / "r8-ce-s9-dead"
    broken.mkdir()
    (broken / "result.json").write_text("")
    (broken / "params.json").write_text('{"dataset": "r8", "loss": "ce", "seed": 9, "phase": "grid"}')
    (broken / "error.txt").write_text("ValueError: boom\n")
    final = final_results(load_runs(study))
    row = final.set_index("trial_dir").loc[str(broken)]
    assert (row["outcome"], row["loss"], row["seed"]) == ("failed", "ce", 9)


def test_curves_average_over_seeds_with_a_band(runs):
    curve = curves(runs, "val_macro_f1")
    grid = runs[runs["phase"] == "grid"]
    assert set(zip(curve["dataset"], curve["loss"], strict=True)) == set(
        zip(grid["dataset"], grid["loss"], strict=True)
    )
    first = curve[(curve["dataset"] == "r8") & (curve["loss"] == "ce") & (curve["epoch"] == 1)].iloc[0]
    values = grid[(grid["dataset"] == "r8") & (grid["loss"] == "ce") & (grid["epoch"] == 1)]["val_macro_f1"]
    assert first["mean"] == pytest.approx(values.mean()) and first["n"] == 3
    banded = curve[curve["n"] >= 3]
    assert len(banded) and (banded["ci_low"] <= banded["mean"] + 1e-12).all()
    assert (banded["mean"] <= banded["ci_high"] + 1e-12).all()
    assert curve[curve["n"] < 2][["ci_low", "ci_high"]].isna().all().all(), "no band from one seed"
    expected = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values))
    assert (first["ci_low"], first["ci_high"]) == pytest.approx(expected), "a t interval over 3 seeds"
    assert first["interval"] == "t"


def test_convergence_figures_per_trial(runs):
    per_trial = trial_convergence(runs, "val_macro_f1", fraction=0.9)
    assert len(per_trial) == 18
    assert (per_trial["epochs_to_90pct"] <= per_trial["best_epoch"]).all()
    assert (per_trial["auc"] <= per_trial["best_value"]).all()


def test_search_history_is_a_running_best(runs):
    history = search_history(runs)
    assert list(history["trial"]) == list(range(1, 7))
    assert (np.diff(history["best_so_far"]) >= 0).all() and (np.diff(history["compute_s"]) > 0).all()


def synthetic_final(effect: float, seeds: int = 8) -> pd.DataFrame:
    """A grid where 'gloss' beats 'ce' by `effect` on every seed, with seeded noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        base = 0.8 + 0.01 * rng.normal()
        for loss, shift in (("ce", 0.0), ("gloss", effect), ("noise", 0.0)):
            noise = 0.002 * rng.normal() if loss != "noise" else 0.01 * rng.normal()
            rows.append(
                {
                    "phase": "grid",
                    "dataset": "r8",
                    "loss": loss,
                    "seed": seed,
                    "outcome": "completed",
                    "selected_test_macro_f1": base + shift + noise,
                }
            )
    return pd.DataFrame(rows)


def test_table_marks_a_known_effect_and_only_it():
    table = results_table(synthetic_final(effect=0.02))
    assert table.marks.loc["gloss", "r8"] == BETTER and table.marks.loc["noise", "r8"] == ""
    markdown = table.to_markdown()
    assert re.search(r"\*\*8\d\.\d\d ± \d\.\d\d▲\*\*", markdown), "best in bold, marked"
    latex = table.to_latex()
    assert r"\toprule" in latex and r"\textbf{" in latex and r"\blacktriangle" in latex
    worse = results_table(synthetic_final(effect=-0.02))
    assert worse.marks.loc["gloss", "r8"] == "▼"


def test_fixture_table_and_paper_comparison(final):
    table = results_table(final)
    assert list(table.mean.columns) == ["mr", "r8"] and set(table.mean.index) == {"ce", "gloss", "supcon"}
    paper = paper_table(final).set_index(["dataset", "loss"])
    assert set(paper.index) == {("r8", "ce"), ("mr", "ce")}, "gloss and supcon are not the paper's rows"
    caveat = paper_caveat(final)
    assert "fidelity frozen" in caveat and "at most 400 training examples" in caveat
    assert paper_caveat(final.assign(fidelity="full").drop(columns="config/train_size")) == ""
    assert paper.loc[("r8", "ce"), "paper_accuracy"] == "97.48 ± 0.11"
    assert paper.loc[("r8", "ce"), "paper_model"] == "distilbert-base-uncased"
    assert paper.loc[("r8", "ce"), "our_model"] == "minilm (frozen)"


def test_the_paper_table_meets_only_the_papers_own_rows():
    """Rows named as the paper names them, with the paper's loss and form, meet its figures; a
    row under another name, loss or form meets none."""

    def trial(row, function, lam, variant=None, sigma=None, model="bert-base"):
        return {
            "phase": "final", "dataset": "r8", "loss": row, "loss_function": function, "loss_lambda": lam,
            "config/loss_params/variant": variant, "config/loss_params/sigma": sigma, "model": model,
            "fidelity": "full", "seed": 0, "outcome": "completed",
            "selected_test_accuracy": 0.9, "selected_test_macro_f1": 0.8,
        }  # fmt: skip

    final = pd.DataFrame(
        [
            trial("gloss_o+ce", "gloss", 0.7, "reference", "2.5"),
            trial("gloss_sqrt+ce", "gloss", 0.7, "reference", "sqrt"),
            trial("gloss_o", "gloss", 1.0, "reference", "1.0"),
            trial("scl", "supcon", 1.0),
            trial("triplet", "triplet", 1.0),
            trial("gloss", "gloss", 0.7, "reference", "2.5"),  # not a name the paper uses
            trial("scl+ce", "triplet", 0.9),  # the paper's name on another loss
            trial("cos_sim", "cosine_mse", 0.5),  # the paper has no integrated cos_sim
            {**trial("gloss_o+ce", "gloss", 0.7, "standard", "2.5"), "dataset": "mr"},  # not their form
            {**trial("gloss_sqrt+ce", "gloss", 0.7, "reference", "0.4"), "dataset": "mr"},  # sigma tuned
        ]
    )
    paper = paper_table(final).set_index(["dataset", "loss"])
    assert sorted(paper.index) == [
        ("r8", "gloss_o"), ("r8", "gloss_o+ce"), ("r8", "gloss_sqrt+ce"), ("r8", "scl"), ("r8", "triplet")
    ]  # fmt: skip
    assert paper.loc[("r8", "gloss_o+ce"), "paper_accuracy"] == "97.71 ± 0.12"
    assert paper.loc[("r8", "gloss_o+ce"), "paper_model"] == "distilbert-base-uncased"
    assert paper.loc[("r8", "gloss_o"), "paper_accuracy"] == "97.99"
    assert paper.loc[("r8", "gloss_o"), "our_model"] == "bert-base (full)"
    assert set(paper["mode"]) == {"integrated", "standalone"}


def test_summary_and_report_say_which_rows_were_not_searched(final):
    grid = final["phase"] == "grid"
    marked = final.assign(phase=final["phase"].where(~grid, "final"))
    marked["unsearched"] = marked["phase"].eq("final") & marked["loss"].eq("ce")
    table = summary_table(marked)
    assert table.loc["r8", "ce"].endswith("(3, unsearched)") and table.loc["r8", "gloss"].endswith("(3)")
    note = unsearched_note(marked)
    assert note.startswith("Unsearched: ") and "r8 ce" in note and "mr ce" in note and "gloss" not in note
    assert unsearched_note(final) == ""
    reused = marked.assign(study="s")
    assert "seed 0" in seed_reuse_note(reused), "the fixture's search trained on a final seed"


def lines_per_axis(figure) -> list[int]:
    return [len(ax.get_lines()) for ax in figure.axes if ax.get_visible()]


def test_figures_have_their_axes_and_series(runs, final, tmp_path):
    convergence = convergence_figure(curves(runs, "val_macro_f1"), "val_macro_f1")
    assert [ax.get_title() for ax in convergence.axes] == ["mr", "r8"]
    assert lines_per_axis(convergence) == [3, 3]
    assert convergence.axes[0].get_xlabel() == "epoch"
    scores = final[final["phase"] == "grid"].pivot_table(
        index=["dataset", "seed"], columns="loss", values="selected_test_macro_f1"
    )
    cd = cd_diagram(compare(scores))
    assert {word for text in cd.axes[0].texts for word in text.get_text().split()} >= {
        "ce",
        "gloss",
        "supcon",
    }
    ablated = final[(final["phase"] == "ablation") & (final["outcome"] == "completed")]
    ablation = ablation_figure(ablation_levels(ablated, "selected_test_macro_f1"), "selected_test_macro_f1")
    assert [ax.get_title() for ax in ablation.axes] == ["sigma"]
    assert [t.get_text() for t in ablation.axes[0].get_xticklabels()] == ["0.1", "1.0"]
    search = search_history_figure(search_history(runs))
    history = search_history(runs)
    assert [ax.get_xlabel() for ax in search.axes] == ["trial"] * history["dataset"].nunique() + [
        "compute seconds (sum over trials)"
    ] * history["dataset"].nunique()
    assert [ax.get_title() for ax in search.axes[: history["dataset"].nunique()]] == sorted(
        history["dataset"].unique()
    )
    assert {t.get_text() for t in search.legends[0].get_texts()} == set(history["loss"])
    rng = np.random.default_rng(0)
    embeddings = embeddings_figure({"ce": (rng.normal(size=(50, 6)), rng.integers(0, 3, 50))})
    assert len(embeddings.axes[0].collections[0].get_offsets()) == 50
    for name, figure in {
        "convergence": convergence,
        "cd": cd,
        "ablation": ablation,
        "search": search,
    }.items():
        for path in save_figure(figure, tmp_path, name):
            assert path.stat().st_size > 5000, path


def test_report_is_self_contained(study, tmp_path):
    path = build_report(study, out=tmp_path / "report")
    page = path.read_text()
    for heading in (
        "Trials",
        "Test results",
        "Integrated rows",
        "Configurations",
        "Convergence",
        "Ablation",
        "Search",
        "Beside the paper",
        "Statistical protocol",
    ):
        assert f"<h2>{heading}" in page, heading
    assert page.count("<img ") == 4 and page.count("data:image/png;base64,") == 4
    assert "Underpowered: some cells have 3 seeds" in page and "±0.5 points" in page
    assert "Iman-Davenport" in page and "holm across the 4 tests" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page), "nothing is loaded from the network"
    assert (tmp_path / "report" / "tables" / "results.tex").exists()
    assert (tmp_path / "report" / "figures" / "convergence.svg").exists()


def test_report_states_the_omnibus_test_across_datasets(study, final, tmp_path):
    """The Friedman statistic and p the report prints are scipy's on the per-dataset means."""
    page = build_report(study, out=tmp_path / "report").read_text()
    scores = final.pivot_table(index="dataset", columns="loss", values="selected_test_macro_f1").dropna()
    statistic, p = stats.friedmanchisquare(*(scores[c] for c in scores.columns))
    assert f"chi-squared {statistic:.2f}, p = {p:.3g}" in page


def with_records(study: Path, keep, replace: dict[str, str]) -> Path:
    """The study with the grid trials `keep` (a predicate on the folder name) only, and text
    replaced in their records."""
    for trial in (study / "grid").iterdir():
        if not keep(trial.name):
            shutil.rmtree(trial)
            continue
        for name in ("result.json", "params.json"):
            text = (trial / name).read_text()
            for old, new in replace.items():
                text = text.replace(old, new)
            (trial / name).write_text(text)
    return study


def test_report_splits_integrated_and_standalone_rows_by_their_records(study, tmp_path):
    """Rows whose records monitored the silhouette are compared apart, with their own ranks and
    diagram; the CSV holds every per-seed score the tests used."""
    with_records(study, lambda name: True, {})
    for trial in (study / "grid").glob("*-supcon-*"):
        text = (trial / "result.json").read_text()
        (trial / "result.json").write_text(
            text.replace('"monitor": "val_macro_f1"', '"monitor": "val_silhouette"')
        )
    page = build_report(study, out=tmp_path / "report").read_text()
    assert "<h2>Integrated rows" in page and "<h2>Standalone rows" in page
    assert "critical-difference-integrated" in page and "critical-difference-standalone" not in page
    csv = pd.read_csv(tmp_path / "report" / "tables" / "per-seed-scores.csv")
    assert set(csv.groupby("protocol")["loss"].unique().map(tuple)) == {("ce", "gloss"), ("supcon",)}


def test_report_with_one_seed_says_so(study, tmp_path):
    """One seed: no '± 0.00', no band claimed in the caption, the verdicts undecided for lack of spread."""
    with_records(study, lambda name: "-s0-" in name, {})
    page = build_report(study, out=tmp_path / "report").read_text()
    assert "± 0.00" not in page and "n = 1: no spread" in page
    assert "one seed, so no band" in page and "from 3 seeds" not in page
    assert "undecided: one seed" in page and "Underpowered: some cells have 1 seed," in page


def test_saved_test_embeddings_are_pictured(study, tmp_path):
    rng = np.random.default_rng(0)
    for trial in sorted((study / "grid").iterdir())[:3]:
        checkpoint = trial / "checkpoint_000005"
        checkpoint.mkdir()
        np.savez_compressed(
            checkpoint / "test_embeddings.npz",
            embeddings=rng.normal(size=(40, 8)),
            labels=rng.integers(0, 2, 40),
        )
    page = build_report(study, out=tmp_path / "report").read_text()
    assert "<h2>Test embeddings" in page and page.count("<img ") == 5


def test_a_trial_folder_twice_is_counted_once_and_reported(study):
    before = final_results(load_runs(study))
    original = sorted((study / "grid").iterdir())[0]
    shutil.copytree(original, original.with_name(original.name + "-again"))
    after = final_results(load_runs(study))
    assert len(after) == len(before), "a (dataset, loss, seed, phase) counts once"
    assert "1 duplicate trial folders ignored" in outcome_note(after)
