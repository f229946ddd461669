"""Committed files name no folder of the machine that made them: results files, reports and docs
use paths relative to the repository (or none), so a reader's checkout says nothing about ours
and nothing points at a folder that exists only there."""

import re
import subprocess
from pathlib import Path

from tests.conftest import REPO

# An absolute path under a machine's own folders, at the start of a word or a quoted string:
# /work/..., /root/..., /home/USER/... (not /home/ray, the home of Ray's Docker image), /Users/...,
# pytest's temporary folders. `/proc/{pid}/root/...` (a path inside a process) does not match.
ROOTS = r"work|root|Users/[\w.-]+|home/(?!ray/)[\w.-]+|tmp/pytest-of-[\w.-]+"
MACHINE_PATH = re.compile(rf"(?:^|[\s\"'(=:,\[])(/(?:{ROOTS})/)")


def committed_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    return [REPO / name for name in listed.decode().split("\0") if name]


def machine_paths(text: str) -> list[str]:
    return [match.group(1) for match in MACHINE_PATH.finditer(text)]


def test_the_pattern_finds_machine_paths_and_only_them():
    planted = '{"argv": ["/work/wt-fid/bench/x.py"], "cwd": "/root/x", "home": "/home/alice/y"}'
    assert machine_paths(planted) == ["/work/", "/root/", "/home/alice/"]
    assert machine_paths("  /home/ray/gloss-study: .\n/proc/{pid}/root/tmp/ray ../shared/data") == []


def test_no_committed_file_names_a_machine_path():
    found = {}
    for path in committed_text_files():
        if path.name == Path(__file__).name or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if paths := machine_paths(text):
            found[str(path.relative_to(REPO))] = sorted(set(paths))
    assert found == {}, found
