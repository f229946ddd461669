"""Everything about a study in one folder or under one URI: figures (PNG, SVG), tables (markdown,
LaTeX) and a self-contained HTML report (figures embedded, nothing loaded from the network)."""

import base64
import html
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.curves import convergence_summary, curves, search_history, trial_convergence
from analysis.load import load_runs, parent, saved_test_embeddings
from analysis.paper import paper_table
from analysis.plots import (
    ablation_figure,
    cd_diagram,
    convergence_figure,
    embeddings_figure,
    save_figure,
    search_history_figure,
)
from analysis.select import comparison_trials, final_results, finished, unsearched
from analysis.stats import compare, seed_summary
from analysis.storage import exists, is_uri, join, read_bytes, upload_folder
from analysis.summary import outcome_note
from analysis.tables import ablation_levels, results_table
from common.atomic import write_text
from common.records import PROVENANCE_FILE

PROTOCOL = """Model selection uses validation data only: each trial reports test metrics at its best
validation epoch (macro-F1 of the head; validation silhouette for standalone losses, whose test
metrics come from a linear probe). Per dataset, each loss is compared with {baseline} over paired
seeds: a paired t-test with fewer than 6 seeds (a Wilcoxon or exact permutation test cannot reach
p &lt; 0.05 there), a Wilcoxon signed-rank test from 6 seeds, Cohen's d_z as the effect size, and Holm's
correction across the comparisons; intervals are 95% BCa bootstrap intervals over seeds. Across
datasets, losses are ranked per dataset (mean over seeds), tested with Friedman's test, and compared
pairwise with the same paired tests and Holm's correction (Benavoli et al., JMLR 2016); the
critical-difference diagram also shows the Nemenyi critical difference (Demšar, JMLR 2006).
Significance is at alpha = {alpha}.{measures}"""

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
table {border-collapse: collapse; margin: 1em 0; font-size: .9em}
td, th {border-bottom: 1px solid #ccc; padding: .3em .6em; text-align: right}
th {background: #f3f3f3}
img {max-width: 100%; border: 1px solid #eee}
.legend, .note {color: #555; font-size: .9em}
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
) -> Path | str:
    """Analyse the studies under `paths` into `out`; returns the HTML report's path. An `out` URI
    (s3://bucket/prefix/report) gets the files built in a local temporary folder, uploaded one
    by one; the HTML embeds its figures, so it stands alone there too."""
    if is_uri(str(out)):
        with tempfile.TemporaryDirectory(prefix="gloss-report-") as folder:
            build_report(*paths, out=folder, metric=metric, baseline=baseline, alpha=alpha)
            upload_folder(Path(folder), str(out))
        return join(str(out), "report.html")
    runs = load_runs(*paths)
    final = final_results(runs)
    trials = finished(comparison_trials(final))
    report = Report(Path(out))
    title = "gloss-study report: " + ", ".join(sorted({str(s) for s in runs["study"].dropna()}))
    overview(report, final)
    results_section(report, final, trials, metric, baseline, alpha)
    across_datasets(report, trials, metric, alpha)
    convergence_section(report, runs)
    optional_sections(report, runs, final, trials, metric)
    report.heading("Statistical protocol")
    report.text(
        PROTOCOL.format(baseline=html.escape(baseline), alpha=alpha, measures=measures_sentence(runs))
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
    report: Report, final: pd.DataFrame, trials: pd.DataFrame, metric: str, baseline: str, alpha: float
) -> None:
    """The results table, then per dataset the seeds' summary and the tests behind its marks."""
    table = results_table(final, metric, baseline, alpha)
    if table.mean.empty:
        return
    report.heading(f"Test results ({metric})")
    report.table("results", table.frame(), table.to_html(), table.to_latex())
    for dataset, group in trials.groupby("dataset"):
        report.heading(f"{dataset}: over seeds")
        report.table(
            f"seeds-{dataset}", seed_summary(group.pivot_table(index="seed", columns="loss", values=metric))
        )
        if dataset in table.comparisons:
            report.table(f"tests-{dataset}", table.comparisons[dataset].pairwise)


def across_datasets(report: Report, trials: pd.DataFrame, metric: str, alpha: float) -> None:
    scores = trials.pivot_table(index="dataset", columns="loss", values=metric, aggfunc="mean").dropna()
    if len(scores) < 2 or scores.shape[1] < 2:
        return
    comparison = compare(scores, alpha=alpha)
    report.heading("Across datasets")
    report.text(
        f"Friedman's test over {len(scores)} datasets and {scores.shape[1]} losses: chi-squared "
        f"{comparison.friedman_statistic:.2f}, p = {comparison.friedman_p:.3g}; Nemenyi critical "
        f"difference {comparison.critical_difference:.2f} ranks at alpha = {alpha}."
    )
    report.figure("critical-difference", cd_diagram(comparison), "Mean ranks of the losses across datasets.")
    report.table("ranks", comparison.mean_ranks.to_frame())
    report.table("tests-across-datasets", comparison.pairwise)


def convergence_section(report: Report, runs: pd.DataFrame) -> None:
    metric = "val_macro_f1" if runs.get("val_macro_f1", pd.Series()).notna().any() else "val_silhouette"
    curve = curves(runs, metric)
    if curve.empty:
        return
    report.heading("Convergence")
    report.figure(
        "convergence",
        convergence_figure(curve, metric),
        f"{metric} by epoch: mean and 95% BCa bootstrap band over seeds (from 3 seeds).",
    )
    report.table("convergence", convergence_summary(trial_convergence(runs, metric)))


def optional_sections(
    report: Report, runs: pd.DataFrame, final: pd.DataFrame, trials: pd.DataFrame, metric: str
) -> None:
    ablation = finished(final[final["phase"] == "ablation"]) if "factor" in final else final.iloc[0:0]
    if len(ablation):
        report.heading("Ablation")
        report.figure(
            "ablation",
            ablation_figure(ablation_levels(ablation, metric), metric),
            f"{metric} at each level: mean and 95% BCa bootstrap interval over seeds.",
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
        report.table("paper", paper.set_index(["dataset", "loss"]))
