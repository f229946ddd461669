"""Item 5: the frozen fidelity's costs: building the MiniLM embedding cache of each dataset, then
the whole 5 datasets x 6 losses x 3 seeds grid on the cached embeddings through `gloss run`.

    .venv/bin/python bench/frozen_grid.py [--cache DIR]

With --cache pointing at an empty folder the build times are measured from scratch."""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench.common import report, seconds

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["mr", "r8", "r52", "ohsumed", "20ng"]


def build_cache(dataset: str) -> float:
    """Seconds to embed one dataset's train and test splits (MiniLM, 128 tokens, mean pooling)."""
    from trainables.config import TrialConfig
    from trainables.training.prepare import prepare_data

    torch.set_num_threads(os.cpu_count() or 1)
    return seconds(lambda: prepare_data(TrialConfig.from_dict({"dataset": dataset}), torch.device("cpu")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="GLOSS_CACHE_DIR to build into (default: a fresh temporary folder)")
    parser.add_argument("--preset", default="frozen-grid")
    args = parser.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="gloss-cache-")
    os.environ["GLOSS_CACHE_DIR"] = cache
    rows = [{"step": f"embed {d}", "seconds": build_cache(d)} for d in DATASETS]
    with tempfile.TemporaryDirectory() as storage:
        grid = seconds(
            lambda: subprocess.run(
                [sys.executable, "-m", "study.cli", "run", args.preset, "--storage", storage],
                cwd=REPO,
                check=True,
                env=os.environ.copy(),
            )
        )
    rows.append({"step": f"gloss run {args.preset} (90 trials, cached)", "seconds": grid})
    report("frozen_grid", rows, {"command": "bench/frozen_grid.py", "cache": cache})


if __name__ == "__main__":
    main()
