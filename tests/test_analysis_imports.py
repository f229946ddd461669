"""The `analysis` package loads a module only when one of its names is asked for: `gloss run`'s
closing summary reads records without scipy or matplotlib, and the package never reaches into
`study` or `trainables`."""

import subprocess
import sys

import pytest

from tests.processes import REPO

SUMMARY_NAMES = "load_runs, final_results, summary_table, outcome_note"  # what `gloss run` prints with


def test_the_closing_summary_loads_neither_statistics_nor_figures():
    code = (
        f"import sys; from analysis import {SUMMARY_NAMES}; "
        "print(sorted(m for m in ('scipy', 'statsmodels', 'matplotlib', 'study', 'trainables') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_every_name_of_the_notebook_api_is_found_in_its_module():
    import analysis.report  # loads the submodules, as a notebook may, before the names are read

    for name in analysis.__all__:
        assert getattr(analysis, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'load_run'"):
        analysis.load_run  # noqa: B018
