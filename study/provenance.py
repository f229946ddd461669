"""`study.json` in the study root: what ran and where, so a result can be traced back to the spec,
the code and the machine that produced it (the report shows it; `gloss status` reads the plan)."""

import dataclasses
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

from analysis.storage import join, write_bytes
from common.records import PROVENANCE_FILE

PACKAGES = ("gloss-study", "torch", "transformers", "ray", "optuna")


def write_provenance(root: str, spec) -> str:
    """Write <root>/study.json (a folder or a URI), replacing the one of an earlier run (a resumed
    study records the code and machine that resumed it); returns its location."""
    location = join(root, PROVENANCE_FILE)
    write_bytes(location, json.dumps(provenance(spec, sys.argv[1:]), indent=2, default=str).encode())
    return location


def provenance(spec, argv: list[str]) -> dict[str, Any]:
    """The spec as parsed, its phases' trial counts, the command line, versions, commit, machine."""
    from study.plan import phases

    return {
        "spec": dataclasses.asdict(spec),
        "phases": [{"name": phase.name, "trials": phase.trials} for phase in phases(spec)],
        "command": ["gloss", *argv],
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {package: version(package) for package in PACKAGES},
        "python": platform.python_version(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "machine": {"hostname": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count()},
        "gpus": gpu_names(),
    }


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
