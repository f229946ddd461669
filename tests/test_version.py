"""`gloss --version`: the installed distribution's version and, from a checkout, the commit."""

import subprocess
import sys
from importlib import metadata

import pytest

from study import provenance
from study.cli import main
from tests.conftest import REPO


def test_version_prints_the_distribution_version_and_the_checkouts_commit(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
    expected = f"gloss {metadata.version('gloss-study')} (commit {head.stdout.strip()[:12]})"
    assert capsys.readouterr().out.strip() == expected


def test_version_outside_a_checkout_is_the_distribution_version_alone(capsys, monkeypatch):
    monkeypatch.setattr(provenance, "git_commit", lambda folder: None)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"gloss {metadata.version('gloss-study')}"


def test_the_console_script_answers_version_without_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "study.cli", "--version"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.startswith("gloss ") and not done.stderr
