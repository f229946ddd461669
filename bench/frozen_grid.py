"""Item 5: the frozen fidelity's costs: building the MiniLM embedding cache of each dataset, then
the whole 5 datasets x 6 losses x 3 seeds grid on the cached embeddings through `gloss run`.

    .venv/bin/python -m bench.frozen_grid [--cache DIR]
    .venv/bin/python -m bench.frozen_grid --smoke    # tiny-bert, 200 R8 documents, 2 losses, 2 epochs

With --cache pointing at an empty folder the build times are measured from scratch; without it a
temporary folder is used and removed at the end."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from analysis import final_results, load_runs
from bench.common import parse, report, seconds

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["mr", "r8", "r52", "ohsumed", "20ng"]
SMOKE = {
    "datasets": ["r8"],
    "model": "tiny-bert",
    "subset": 200,
    "set": ["losses=[ce,gloss]", "seeds=[0]", "training.epochs=2"],
}


def subset(args: argparse.Namespace) -> dict:
    """Training and evaluation subset sizes, when the run is limited to a subset."""
    return {"train_size": args.subset, "eval_size": args.subset // 2} if args.subset else {}


def build_cache(dataset: str, args: argparse.Namespace) -> float:
    """Seconds to embed one dataset's train and test splits (128 tokens, mean pooling)."""
    from trainables.config import TrialConfig
    from trainables.training.prepare import prepare_data

    torch.set_num_threads(os.cpu_count() or 1)
    config = TrialConfig.from_dict({"dataset": dataset, "model": args.model, **subset(args)})
    return seconds(lambda: prepare_data(config, torch.device("cpu")))


def grid_overrides(args: argparse.Namespace) -> list[str]:
    """`gloss run --set` arguments: the model, datasets and subset measured, then --set as given."""
    pairs = [f"model={args.model}", f"datasets=[{','.join(args.datasets)}]"]
    pairs += [f"training.{key}={value}" for key, value in subset(args).items()]
    return [arg for pair in [*pairs, *args.set] for arg in ("--set", pair)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="GLOSS_CACHE_DIR to build into (default: a temporary folder)")
    parser.add_argument("--preset", default="frozen-grid")
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--subset", type=int, help="training documents per dataset (default: all)")
    parser.add_argument("--set", action="append", default=[], help="more `gloss run --set` overrides")
    args = parse(parser, SMOKE)
    cache = args.cache or tempfile.mkdtemp(prefix="gloss-cache-")
    os.environ["GLOSS_CACHE_DIR"] = cache
    try:
        rows = [{"step": f"embed {d}", "seconds": build_cache(d, args)} for d in args.datasets]
        with tempfile.TemporaryDirectory() as storage:
            command = [sys.executable, "-m", "study.cli", "run", args.preset, "--storage", storage]
            command += grid_overrides(args)
            grid = seconds(lambda: subprocess.run(command, cwd=REPO, check=True, env=os.environ.copy()))
            final = final_results(load_runs(*Path(storage).iterdir()))
    finally:
        if not args.cache:
            shutil.rmtree(cache)
    if (final["outcome"] == "failed").any():
        raise RuntimeError(f"{(final['outcome'] == 'failed').sum()} trial(s) of the grid failed")
    rows.append({"step": f"gloss run {args.preset} ({len(final)} trials, cached)", "seconds": grid})
    report("frozen_grid", rows, {"cache": cache, "grid_command": command[1:]}, smoke=args.smoke)


if __name__ == "__main__":
    main()
