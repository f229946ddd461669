"""Shared by the benchmarks: timing, the machine, the --smoke flag, and writing results (a table
on stdout and a JSON file under bench/results/)."""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    """What ran the benchmark."""
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": datetime.date.today().isoformat(),
    }


def parse(parser: argparse.ArgumentParser, smoke: dict) -> argparse.Namespace:
    """The arguments, with a --smoke flag: the same code path on tiny inputs, in seconds, so that CI
    keeps every benchmark working. Under --smoke, `smoke` replaces the defaults (flags given win)."""
    parser.add_argument(
        "--smoke", action="store_true", help="tiny inputs, seconds; writes results/<name>_smoke.json"
    )
    args = parser.parse_args()
    if args.smoke:
        parser.set_defaults(**smoke)
        args = parser.parse_args()
    return args


def seconds(function: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(name: str, rows: list[dict], notes: dict | None = None, smoke: bool = False) -> None:
    """Print rows as an aligned table and write them with the machine, the date and the command line
    to results/<name>.json (results/<name>_smoke.json for a smoke run, never the real results)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[format_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    RESULTS.mkdir(exist_ok=True)
    payload = {"machine": machine(), "argv": portable(sys.argv), "rows": rows, **(notes or {})}
    (RESULTS / f"{name}{'_smoke' if smoke else ''}.json").write_text(json.dumps(payload, indent=2) + "\n")


def portable(argv: list[str]) -> list[str]:
    """The command line with paths inside the checkout made relative to it: a committed results
    file names no folder of the machine that wrote it."""
    repo = Path(__file__).resolve().parents[1]
    return [os.path.relpath(arg, repo) if os.path.isabs(arg) else arg for arg in argv]


def format_cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
