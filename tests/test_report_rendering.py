"""The HTML report renders in headless Chromium with its figures, and the example notebook runs."""

import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from analysis.report import build_report
from tests.conftest import REPO

FIXTURE = Path(__file__).parent / "fixtures" / "study"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(page: Path, out: Path, profile: Path) -> np.ndarray:
    """Render `page` in a fresh headless Chromium profile; the screenshot as an RGB array."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make test` installs Debian's chromium package"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--window-size=1200,6000",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.parametrize("seeds", [1, 3])
def test_report_and_its_figures_render_in_chromium(tmp_path, seeds):
    """With 3 seeds, and with 1 (no spread, no band: the report still renders and says so)."""
    study = Path(shutil.copytree(FIXTURE, tmp_path / "study"))
    for trial in (study / "grid").iterdir():
        if seeds == 1 and "-s0-" not in trial.name:
            shutil.rmtree(trial)
    report = build_report(study, out=tmp_path / "report")
    rendered = screenshot(report, tmp_path / "page.png", tmp_path / "profile-a")
    stripped = report.with_name("no-figures.html")
    stripped.write_text(report.read_text().replace("data:image/png;base64,", "data:image/png;base64,x"))
    without_figures = screenshot(stripped, tmp_path / "bare.png", tmp_path / "profile-b")
    inked = (rendered < 200).any(axis=2).mean()
    assert inked > 0.02, "the page shows text and tables"
    changed = (np.abs(rendered.astype(int) - without_figures.astype(int)).sum(axis=2) > 30).mean()
    assert changed > 0.05, "the figures themselves rendered"
    colours = len(np.unique(rendered.reshape(-1, 3)[::97], axis=0))
    assert colours > 50, "coloured plots, not only black text"


def test_example_notebook_runs_headless(tmp_path):
    notebook = nbformat.read(REPO / "notebooks" / "explore_study.ipynb", as_version=4)
    os.environ["GLOSS_STUDY"] = str(shutil.copytree(FIXTURE, tmp_path / "study"))
    try:
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
        ).execute()
    finally:
        os.environ.pop("GLOSS_STUDY")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the convergence figure is shown"
    text = "".join(o.get("text", "") for o in outputs)
    assert "Underpowered" in text and "undecided: add" in text and "▲" in text
    shown = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "P(a better)" in shown and "**" not in shown, "tables as HTML, no markdown bold inside"
    sources = "".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert sources.count("from analysis import") == 1 and "from analysis." not in sources
