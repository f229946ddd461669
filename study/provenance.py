"""`study.json` in the study root: what ran and where, so a result can be traced back to the spec,
the code and the machine that produced it (the report shows it; `gloss status` reads the plan)."""

import json
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from common.records import PROVENANCE_FILE
from common.storage import exists, join, read_bytes, write_bytes

PACKAGES = ("gloss-study", "torch", "transformers", "ray", "optuna")


def read_provenance(root: str) -> dict[str, Any] | None:
    """The study's study.json, or None when it has none (a new study, or one from before it)."""
    location = join(root, PROVENANCE_FILE)
    return json.loads(read_bytes(location)) if exists(location) else None


def write_provenance(root: str, spec, record: dict[str, Any] | None, plan, stage=None) -> dict[str, Any]:
    """Write <root>/study.json (a folder or a URI) and return it: the spec the study was started
    with (kept from `record`, never replaced), each growth (`stage`, study/growth.py: when, by
    which command, what it added), the trial count of each phase of `plan` (the phases of `spec`,
    a grown study's whole plan), and the code and machine of this run (a resumed study records
    those that resumed it)."""
    from study.growth import plain, stages

    run = run_facts(sys.argv[1:])
    started = record["spec"] if record else plain(spec)
    growth = list(record.get("growth", [])) if record else []
    if stage is not None:
        added = stage.added_to(stages(record)[-1])
        growth.append({"time": run["written"], "command": run["command"], "added": added})
    counts = [{"name": phase.name, "trials": phase.trials} for phase in plan]
    written = {"spec": started, "growth": growth, "phases": counts, **run}
    write_bytes(join(root, PROVENANCE_FILE), json.dumps(written, indent=2, default=str).encode())
    return written


def run_facts(argv: list[str]) -> dict[str, Any]:
    """The command line, versions, commit and machine of this run."""
    return {
        "command": ["gloss", *argv],
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {package: version(package) for package in PACKAGES},
        "python": platform.python_version(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "machine": {"hostname": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count()},
        "gpus": gpu_names(),
    }


def version_line() -> str:
    """`gloss --version`: the installed distribution's version, and the commit when the code runs
    from a git checkout (an editable install), where the version alone does not say which code."""
    commit = git_commit(Path(__file__).resolve().parent)
    line = f"gloss {version('gloss-study') or 'unknown (not installed)'}"
    return f"{line} (commit {commit[:12]})" if commit else line


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path) -> str | None:
    """HEAD of the git checkout holding `folder`, or None when it is not one (an installed wheel)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str] | None:
    """The names of this machine's CUDA devices, or None without any."""
    import torch

    if not torch.cuda.is_available():
        return None
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
