"""Analysis: run records in, curves, significance tests, tables, figures and reports out.

Reads the records Ray Tune wrote; imports neither `study` nor `trainables`. The notebook API is
one import: `from analysis import load_runs, final_results, compare, results_table, curves, ...`."""

from analysis.curves import curves, trial_convergence
from analysis.load import load_runs
from analysis.paper import paper_table
from analysis.select import final_results
from analysis.stats import Comparison, bootstrap_ci, compare, seed_summary
from analysis.summary import outcome_note, summary_table
from analysis.tables import ResultTable, results_table

__all__ = [
    "Comparison",
    "ResultTable",
    "bootstrap_ci",
    "compare",
    "curves",
    "final_results",
    "load_runs",
    "outcome_note",
    "paper_table",
    "results_table",
    "seed_summary",
    "summary_table",
    "trial_convergence",
]
