"""Analysis: run records in, curves, verdicts, significance tests, tables, figures and reports out.

Reads the records Ray Tune wrote; imports neither `study` nor `trainables`. The notebook API is
one import: `from analysis import load_runs, final_results, compare_study, ...`; `compare_study`
returns every comparison of a study in one immutable result, which tables and plots only render."""

from analysis.curves import curves, trial_convergence
from analysis.load import load_runs
from analysis.paper import paper_table
from analysis.select import final_results
from analysis.stats import Comparison, bootstrap_ci, compare, mean_interval, seed_summary
from analysis.summary import outcome_note, summary_table
from analysis.tables import ResultTable, results_table
from analysis.verdict_text import across_frame, comparison_text, pair_frame, settings_frame
from analysis.verdicts import ProtocolComparison, StudyComparison, check_settings, compare_study

__all__ = [
    "Comparison",
    "ProtocolComparison",
    "ResultTable",
    "StudyComparison",
    "across_frame",
    "bootstrap_ci",
    "cd_diagram",
    "check_settings",
    "compare",
    "compare_study",
    "comparison_text",
    "convergence_figure",
    "curves",
    "final_results",
    "load_runs",
    "mean_interval",
    "outcome_note",
    "pair_frame",
    "paper_table",
    "results_table",
    "seed_summary",
    "settings_frame",
    "summary_table",
    "trial_convergence",
]


FIGURES = ("cd_diagram", "convergence_figure")


def __getattr__(name: str):
    """The figures, imported when first asked for: matplotlib and seaborn (which sets its theme on
    import) load only where a figure is drawn, not in every `gloss` command that reads records."""
    if name in FIGURES:
        from analysis import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
