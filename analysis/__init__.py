"""Analysis: run records in, curves, verdicts, significance tests, tables, figures and reports out.

Reads the records Ray Tune wrote; imports neither `study` nor `trainables`. The notebook API is
one import: `from analysis import load_runs, final_results, compare_study, ...`; `compare_study`
returns every comparison of a study in one immutable result, which tables and plots only render."""

import importlib

# Bound here, not found lazily: importing the submodule `analysis.curves` (as analysis.report
# does) sets the package's `curves` to that module, which only this later binding overrides.
from analysis.curves import curves as curves

#: Where each name of the notebook API lives. Each module is imported when one of its names is
#: first asked for: `gloss run`'s closing summary reads records without loading scipy, and
#: matplotlib and seaborn (which sets its theme on import) load only where a figure is drawn.
HOMES = {
    "trial_convergence": "analysis.curves",
    "load_runs": "analysis.load",
    "paper_table": "analysis.paper",
    "cd_diagram": "analysis.plots",
    "convergence_figure": "analysis.plots",
    "final_results": "analysis.select",
    "Comparison": "analysis.stats",
    "bootstrap_ci": "analysis.stats",
    "compare": "analysis.stats",
    "mean_interval": "analysis.stats",
    "seed_summary": "analysis.stats",
    "outcome_note": "analysis.summary",
    "summary_table": "analysis.summary",
    "ResultTable": "analysis.tables",
    "results_table": "analysis.tables",
    "across_frame": "analysis.verdict_text",
    "comparison_text": "analysis.verdict_text",
    "pair_frame": "analysis.verdict_text",
    "settings_frame": "analysis.verdict_text",
    "ProtocolComparison": "analysis.verdicts",
    "StudyComparison": "analysis.verdicts",
    "check_settings": "analysis.verdicts",
    "compare_study": "analysis.verdicts",
}

__all__ = sorted([*HOMES, "curves"])


def __getattr__(name: str):
    if name not in HOMES:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *HOMES])
