"""How fast analysis.load_runs reads a large study: N trials x E epochs of realistic records
(the fixture study's records, varied), loaded cold, from the cache, and after a few trials change.

    .venv/bin/python -m bench.analysis_load --trials 10000 --epochs 50
    .venv/bin/python -m bench.analysis_load --smoke    # 2,000 trials x 2 epochs: a parallel first load

Prints a table and writes bench/results/analysis_load.json."""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis import final_results, load_runs
from bench.common import parse, report

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "study" / "grid"


def template() -> list[dict]:
    """One real trial's records."""
    trial = sorted(FIXTURE.iterdir())[0]
    return [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]


def write_study(root: Path, trials: int, epochs: int) -> None:
    """`trials` folders under root/grid, each with `epochs` records varied from the template."""
    records = template()
    rng = np.random.default_rng(0)
    for t in range(trials):
        folder = root / "grid" / f"r8-gloss-s{t % 5}-{t:08x}"
        folder.mkdir(parents=True)
        lines = []
        for epoch in range(1, epochs + 1):
            record = dict(records[min(epoch, len(records)) - 1])
            record.update(
                epoch=epoch,
                training_iteration=epoch,
                trial_id=f"{t:08x}",
                seed=t % 5,
                val_macro_f1=float(rng.random()),
                test_macro_f1=float(rng.random()),
            )
            lines.append(json.dumps(record))
        (folder / "result.json").write_text("\n".join(lines) + "\n")


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--changed", type=int, default=10, help="trials touched before the third load")
    args = parse(parser, {"trials": 2000, "epochs": 2, "changed": 2})
    root = Path(tempfile.mkdtemp(prefix="gloss-bench-"))
    try:
        generate_s, _ = timed(lambda: write_study(root, args.trials, args.epochs))
        cold_s, runs = timed(lambda: load_runs(root))
        warm_s, _ = timed(lambda: load_runs(root))
        for folder in sorted((root / "grid").iterdir())[: args.changed]:
            with open(folder / "result.json", "a") as handle:
                handle.write("\n")
            os.utime(folder / "result.json")
        changed_s, _ = timed(lambda: load_runs(root))
        final_s, _ = timed(lambda: final_results(runs))
        size_mb = sum(p.stat().st_size for p in root.rglob("result.json")) / 2**20
        row = {
            "trials": args.trials,
            "epochs": args.epochs,
            "records": len(runs),
            "json_mb": round(size_mb, 1),
            "generate_s": generate_s,
            "cold_load_s": cold_s,
            "cached_load_s": warm_s,
            f"load_after_{args.changed}_changed_s": changed_s,
            "final_results_s": final_s,
        }
    finally:
        shutil.rmtree(root)
    report("analysis_load", [row], smoke=args.smoke)


if __name__ == "__main__":
    main()
