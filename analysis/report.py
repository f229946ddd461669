"""Everything about a study in one folder or under one URI: figures (PNG, SVG), tables (markdown,
LaTeX) and a self-contained HTML report (figures embedded, nothing loaded from the network)."""

import base64
import html
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.bayes import HIERARCHICAL, SIGNED_RANK
from analysis.curves import convergence_summary, curves, search_history, trial_convergence
from analysis.load import load_runs, parent, saved_test_embeddings
from analysis.paper import paper_caveat, paper_table
from analysis.plots import (
    ablation_figure,
    cd_diagram,
    convergence_figure,
    embeddings_figure,
    save_figure,
    search_history_figure,
)
from analysis.select import comparison_trials, final_results, finished, unsearched
from analysis.stats import MIN_BOOTSTRAP_N, seed_summary
from analysis.summary import outcome_note
from analysis.tables import ablation_levels, results_table
from analysis.verdict_text import (
    across_frame,
    pair_frame,
    ranking_sentence,
    settings_frame,
    settings_sentence,
)
from analysis.verdicts import DEFAULT_ROPE, ProtocolComparison, StudyComparison, compare_study
from common.atomic import write_text
from common.records import PROVENANCE_FILE
from common.storage import exists, is_uri, join, read_bytes, upload_folder

PROTOCOL = """Model selection uses validation data only: each trial reports test metrics at its best
validation epoch (macro-F1 of the head; validation silhouette for standalone rows, whose test
metrics come from a linear probe). Integrated and standalone rows are selected and scored
differently, so they are compared separately, each with its own ranks. Per dataset, each row is
compared with {baseline} (else with the untrained control, else every pair) over paired seeds: a
Bayesian t-test on the seeds' differences (baycomp's posterior, correlation 0, as seeds are
independent repetitions on one split) gives P(a better), P(equivalent within the ROPE) and P(b
better); beside it the frequentist test, a paired t-test with fewer than 6 seeds (a Wilcoxon or
exact permutation test cannot reach p &lt; 0.05 there), a Wilcoxon signed-rank test from 6, with
{correction}'s correction across every test of the table. "Detectable" is the difference the
paired t-test would find with power 0.8 at the table's strictest threshold (alpha / tests), given the
observed spread; "add N seeds" is how many more seeds would detect the observed difference, or show
equivalence within the ROPE when the observed difference lies inside it. Across datasets: {across};
Friedman's test with Iman-Davenport's F (Demšar, JMLR 2006, recommends the F), and the Nemenyi
critical difference on the diagram. Significance is at alpha = {alpha}.{measures}"""

MEASURES = (
    " Silhouettes use the {silhouette} distance on L2-normalised embeddings; the standalone probe is {probe}."
)
PROBES = {
    "linear_adam": "a class-weighted linear layer trained with Adam",
    "logistic_regression": "logistic regression",
}


def measures_sentence(runs: pd.DataFrame) -> str:
    """Which silhouette and probe the records say were used (empty for records that do not say)."""
    if not {"silhouette_metric", "probe"} <= set(runs):
        return ""
    names = [
        ", ".join(sorted(str(v) for v in runs[c].dropna().unique())) for c in ("silhouette_metric", "probe")
    ]
    probe = " / ".join(PROBES.get(n, n) for n in names[1].split(", "))
    return MEASURES.format(silhouette=html.escape(names[0]), probe=html.escape(probe))


STYLE = """
body {font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222}
table {border-collapse: collapse; margin: 1em 0; font-size: .9em; display: block; overflow-x: auto}
td, th {border-bottom: 1px solid #ccc; padding: .3em .6em; text-align: right}
th {background: #f3f3f3}
img {max-width: 100%; border: 1px solid #eee}
.legend, .note {color: #555; font-size: .9em}
.headline {font-weight: 600; border-left: 4px solid #c60; padding-left: .6em}
"""


@dataclass
class Report:
    """Sections of the HTML report, collected while files are written."""

    out: Path
    sections: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.sections.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, css: str = "") -> None:
        self.sections.append(f"<p class='{css}'>{text}</p>")

    def table(
        self, name: str, frame: pd.DataFrame, html_text: str | None = None, latex: str | None = None
    ) -> None:
        folder = self.out / "tables"
        write_text(folder / f"{name}.md", frame.to_markdown() + "\n")
        write_text(folder / f"{name}.tex", latex or frame.to_latex(escape=True))
        self.sections.append(html_text or frame.to_html(float_format=lambda v: f"{v:.4g}"))

    def figure(self, name: str, figure, caption: str) -> None:
        png = save_figure(figure, self.out / "figures", name)[0]
        data = base64.b64encode(png.read_bytes()).decode()
        self.sections.append(
            f"<figure><img alt='{name}' src='data:image/png;base64,{data}'>"
            f"<figcaption class='legend'>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self, title: str) -> Path:
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(self.sections)}</body></html>"
        )
        path = self.out / "report.html"
        write_text(path, page)
        return path


def build_report(
    *paths: str | Path,
    out: str | Path,
    metric: str = "selected_test_macro_f1",
    baseline: str = "ce",
    alpha: float = 0.05,
    rope: float = DEFAULT_ROPE,
    correction: str = "holm",
    hierarchical: bool = False,
    split: bool = True,
) -> Path | str:
    """Analyse the studies under `paths` into `out`; returns the HTML report's path. An `out` URI
    (s3://bucket/prefix/report) gets the files built in a local temporary folder, uploaded one
    by one; the HTML embeds its figures, so it stands alone there too. `rope` is in the metric's
    units; `hierarchical` asks for baycomp's hierarchical test across datasets (needs Stan)."""
    settings = dict(metric=metric, baseline=baseline, alpha=alpha, rope=rope, correction=correction)
    if is_uri(str(out)):
        with tempfile.TemporaryDirectory(prefix="gloss-report-") as folder:
            build_report(*paths, out=folder, hierarchical=hierarchical, split=split, **settings)
            upload_folder(Path(folder), str(out))
        return join(str(out), "report.html")
    runs = load_runs(*paths)
    final = final_results(runs)
    trials = finished(comparison_trials(final))
    result = compare_study(final, hierarchical=hierarchical, split=split, **settings)
    report = Report(Path(out))
    title = "gloss-study report: " + ", ".join(sorted({str(s) for s in runs["study"].dropna()}))
    if result.protocols:
        report.text(html.escape(result.power_sentence()), "headline")
        report.text(html.escape(settings_sentence(result)), "note")
    overview(report, final)
    results_section(report, final, trials, metric, baseline, alpha, correction)
    for comparison in result.protocols:
        verdict_section(report, comparison)
    scores_section(report, result)
    convergence_section(report, runs)
    optional_sections(report, runs, final, trials, metric)
    report.heading("Statistical protocol")
    used = {test for p in result.protocols for test in p.across["test"]} or {SIGNED_RANK}
    if hierarchical and HIERARCHICAL not in used:
        used.add(f"not the {HIERARCHICAL}, which was asked for but needs Stan and 2 seeds per dataset")
    report.text(
        PROTOCOL.format(
            baseline=html.escape(baseline),
            alpha=alpha,
            correction=html.escape(correction),
            across="the " + "; ".join(sorted(used)),
            measures=measures_sentence(runs),
        )
    )
    provenance_section(report, paths)
    return report.write(title)


def provenance_section(report: Report, paths: tuple) -> None:
    """What `gloss run` recorded in each study's study.json: the command, versions, git commit,
    machine and GPUs (studies run before it was written have none, and no section)."""
    rows = {}
    for path in paths:
        for root in (str(path), parent(str(path))):
            location = join(root, PROVENANCE_FILE)
            if root not in rows and exists(location):
                rows[root] = provenance_row(json.loads(read_bytes(location)))
                break
    if rows:
        report.heading("Provenance")
        report.table("provenance", pd.DataFrame(rows.values(), index=list(rows)).T)


def provenance_row(record: dict) -> dict[str, str]:
    """One study's provenance as short text fields."""
    machine = record.get("machine") or {}
    versions = record.get("versions") or {}
    return {
        "study": (record.get("spec") or {}).get("name", ""),
        "command": " ".join(record.get("command") or []),
        "written": record.get("written", ""),
        "git commit": record.get("git_commit") or "none",
        **{name: str(value or "none") for name, value in versions.items()},
        "python": record.get("python", ""),
        "machine": f"{machine.get('hostname')}, {machine.get('cpu')}, {machine.get('cores')} cores",
        "GPUs": ", ".join(record.get("gpus") or []) or "none",
    }


def overview(report: Report, final: pd.DataFrame) -> None:
    """Trials per phase and outcome, the restarts they survived, and notes on unusual ones."""
    counts = final.groupby(["phase", "outcome"]).size().unstack(fill_value=0)
    counts["restarts"] = final.groupby("phase")["restarts"].sum()
    report.heading("Trials")
    report.table("outcomes", counts)
    notes = [*outcome_note(final).splitlines(), unsearched_note(final), seed_reuse_note(final)]
    for note in filter(None, notes):
        report.text(html.escape(note), "note")


def unsearched_note(final: pd.DataFrame) -> str:
    """Rows the final phase ran at their base configuration, or ''."""
    rows = final[unsearched(final)][["dataset", "loss"]].drop_duplicates()
    if rows.empty:
        return ""
    names = ", ".join(f"{r.dataset} {r.loss}" for r in rows.itertuples())
    return (
        f"Unsearched: {names} ran at the base configuration, because the search finished no trial "
        "for them or the spec did not search them; they were not tuned like the other rows."
    )


def seed_reuse_note(final: pd.DataFrame) -> str:
    """When a final run trained on the seed its search trials trained on, or ''."""
    if "phase" not in final:
        return ""

    def seeds(phase: str) -> set:
        return set(map(tuple, final[final["phase"] == phase][["study", "seed"]].values.tolist()))

    reused = sorted({seed for _, seed in seeds("search") & seeds("final")})
    if not reused:
        return ""
    return (
        f"The search trained on seed {', '.join(map(str, reused))}, which the final runs reuse: "
        "their scores on that seed favour the configuration the search chose there."
    )


def results_section(
    report: Report,
    final: pd.DataFrame,
    trials: pd.DataFrame,
    metric: str,
    baseline: str,
    alpha: float,
    correction: str = "holm",
) -> None:
    """The results table, then per dataset the seeds' summary and the tests behind its marks."""
    table = results_table(final, metric, baseline, alpha, correction)
    if table.mean.empty:
        return
    report.heading(f"Test results ({metric})")
    report.table("results", table.frame(), table.to_html(), table.to_latex())
    for dataset, group in trials.groupby("dataset"):
        report.heading(f"{dataset}: over seeds, in percent")
        summary = seed_summary(group.pivot_table(index="seed", columns="loss", values=metric))
        summary[["mean", "std", "ci_low", "ci_high"]] *= 100
        report.table(f"seeds-{dataset}", summary)


def verdict_section(report: Report, comparison: ProtocolComparison) -> None:
    """One protocol's comparisons: verdicts per dataset, across datasets, ranks and their diagram."""
    name = comparison.protocol
    report.heading(f"{name.capitalize()} rows: {comparison.description}")
    frame = pair_frame(comparison)
    if len(frame):
        report.table(f"verdicts-{name}", frame.set_index(["dataset", "a", "b"]))
        report.text(f"Family of the correction: {html.escape(comparison.family)}.", "legend")
    if len(comparison.across):
        report.text(f"Across datasets ({html.escape(comparison.across['test'].iloc[0])}):")
        report.table(f"verdicts-across-{name}", across_frame(comparison).set_index(["a", "b"]))
    report.text(html.escape(ranking_sentence(comparison)))
    if comparison.ranking is not None:
        report.figure(
            f"critical-difference-{name}",
            cd_diagram(comparison.ranking),
            f"Mean ranks of the {name} rows across {comparison.ranking.n_blocks} datasets.",
        )
        report.table(f"ranks-{name}", comparison.ranking.mean_ranks.to_frame())


def scores_section(report: Report, result: StudyComparison) -> None:
    """The configuration every row ran with, and the per-seed scores as CSV next to the tables."""
    if result.configurations.empty:
        return
    report.heading("Configurations")
    report.table("configurations", result.configurations, settings_frame(result).to_html())
    scores = result.per_seed_scores()
    write_text(report.out / "tables" / "per-seed-scores.csv", scores.to_csv(index=False))
    report.text(
        f"Per-seed scores of every test above ({len(scores)} rows, fractions): "
        "<a href='tables/per-seed-scores.csv'>tables/per-seed-scores.csv</a>.",
        "note",
    )


def convergence_section(report: Report, runs: pd.DataFrame) -> None:
    metric = "val_macro_f1" if runs.get("val_macro_f1", pd.Series()).notna().any() else "val_silhouette"
    curve = curves(runs, metric)
    if curve.empty:
        return
    report.heading("Convergence")
    report.figure("convergence", convergence_figure(curve, metric), band_caption(curve, f"{metric} by epoch"))
    summary = convergence_summary(trial_convergence(runs, metric))
    summary[["best_value", "auc"]] *= 100
    report.table("convergence", summary.rename(columns={"best_value": "best_value (%)", "auc": "auc (%)"}))


def band_caption(curve: pd.DataFrame, what: str) -> str:
    """The caption of a figure of means with bands, from the seeds its points actually have."""
    seeds = sorted(set(curve["n"].astype(int)))
    count = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
    if seeds[-1] < 2:
        return f"{what}, in percent: one seed, so no band (n = 1: no spread)."
    kind = "BCa bootstrap" if seeds[0] >= MIN_BOOTSTRAP_N else f"Student's t (below {MIN_BOOTSTRAP_N} seeds)"
    return f"{what}, in percent: mean over {count} seeds and its 95% {kind} band."


def optional_sections(
    report: Report, runs: pd.DataFrame, final: pd.DataFrame, trials: pd.DataFrame, metric: str
) -> None:
    ablation = finished(final[final["phase"] == "ablation"]) if "factor" in final else final.iloc[0:0]
    if len(ablation):
        report.heading("Ablation")
        report.figure(
            "ablation",
            ablation_figure(ablation_levels(ablation, metric), metric),
            band_caption(ablation_levels(ablation, metric), f"{metric} at each level"),
        )
    history = search_history(runs)
    if len(history):
        report.heading("Search")
        report.figure("search-history", search_history_figure(history), "Best validation score so far.")
    if embeddings := saved_test_embeddings(trials):
        report.heading("Test embeddings")
        report.figure(
            "embeddings", embeddings_figure(embeddings), "First two principal components, by class."
        )
    paper = paper_table(final)
    if len(paper):
        report.heading("Beside the paper's numbers")
        if caveat := paper_caveat(final):
            report.text(html.escape(caveat), "headline")
        report.table("paper", paper.set_index(["dataset", "loss"]))
