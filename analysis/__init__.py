"""Analysis: run records in, curves, significance tests, tables, figures and reports out.

Reads the records Ray Tune wrote; imports neither `study` nor `trainables`."""

from analysis.load import load_runs
from analysis.select import final_results
from analysis.summary import outcome_note, summary_table

__all__ = ["final_results", "load_runs", "outcome_note", "summary_table"]
