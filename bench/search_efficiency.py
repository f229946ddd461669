"""Item 6: search efficiency on G-Loss's parameters at frozen fidelity: TPE with and without ASHA
against random search at equal budget, on R8 and MR, over 5 search seeds.

    .venv/bin/python -m bench.search_efficiency [--trials 20 --seeds 5]
    .venv/bin/python -m bench.search_efficiency --smoke    # tiny-bert, R8, 3 trials per method, 1 seed

Each search is a real `search` phase through Ray Tune (our GroupedSearch and Optuna), on a
reduced-cost trial (a stratified 1,500-document training subset, 10 epochs) so that 600 trials
fit in minutes. Reported: mean best validation macro-F1 after n trials, and the budget (trials and
compute seconds) each method needs to come within 0.5 points of the best score found."""

import argparse
import tempfile

import numpy as np
import pandas as pd

from analysis import load_runs
from analysis.curves import search_history
from bench.common import parse, report
from study.launch import RunOptions, run_phase, storage_root
from study.plan import search_phase
from study.ray_session import connect, prepare_environment
from study.spec import spec_from_mapping

METHODS = {
    "tpe": {"sampler": "tpe"},
    "tpe + asha": {"sampler": "tpe", "scheduler": "asha"},
    "random": {"sampler": "random"},
}


def run_search(
    dataset: str, method: str, seed: int, trials: int, storage: str, model: str, training: dict
) -> pd.DataFrame:
    """One search; its history (trial number, best so far, compute seconds)."""
    name = f"{dataset}-{method.replace(' + ', '-')}-{seed}"
    spec = spec_from_mapping(
        {
            "name": name,
            "kind": "search",
            "model": model,
            "datasets": [dataset],
            "losses": ["gloss"],
            "seeds": [0],
            "training": training,
            "search": {
                "trials": trials,
                "seed": seed,
                "max_concurrent": 2,
                "grace_period": 2,
                "reduction_factor": 3,
                **METHODS[method],
            },
        },
        "bench",
    )
    root = storage_root(storage, name)
    results = run_phase(spec, search_phase(spec), RunOptions(storage), root)
    if results.num_errors:
        error = next(r.error for r in results if r.error)
        raise RuntimeError(f"{name}: {results.num_errors} trial(s) failed, the comparison needs all: {error}")
    return search_history(load_runs(root)).assign(method=method, search_seed=seed)


def budget_to(history: pd.DataFrame, target: float) -> tuple[float, float]:
    """The first trial number at which the seed-averaged best-so-far reaches `target`, and the
    seed-averaged compute seconds spent by then (inf when it never does)."""
    mean = history.groupby("trial")[["best_so_far", "compute_s"]].mean()
    reached = mean[mean["best_so_far"] >= target]
    if reached.empty:
        return np.inf, np.inf
    return float(reached.index[0]), float(reached["compute_s"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["r8", "mr"])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--train-size", type=int, default=1500, help="stratified training subset")
    parser.add_argument("--epochs", type=int, default=10)
    args = parse(
        parser,
        {"datasets": ["r8"], "trials": 3, "seeds": 1, "model": "tiny-bert", "train_size": 150, "epochs": 3},
    )
    size = args.train_size
    training = {"train_size": size, "eval_size": size // 3, "epochs": args.epochs, "patience": 3}
    prepare_environment(None)
    connect(None)
    rows, curves = [], []
    with tempfile.TemporaryDirectory() as storage:
        for dataset in args.datasets:
            histories = pd.concat(
                [
                    run_search(dataset, method, seed, args.trials, storage, args.model, training)
                    for seed in range(args.seeds)
                    for method in METHODS
                ]
            )
            mean_curves = {
                m: h.groupby("trial")["best_so_far"].mean()
                for m, h in histories.groupby("method", sort=False)
            }
            target = max(curve.max() for curve in mean_curves.values()) - 0.005
            for method, history in histories.groupby("method", sort=False):
                curve = mean_curves[method]
                curves.append({"dataset": dataset, "method": method, "curve": curve.round(4).tolist()})
                trials_needed, compute_needed = budget_to(history, target)
                rows.append(
                    {
                        "dataset": dataset,
                        "method": method,
                        **{f"best@{n}": curve.get(n, np.nan) for n in (5, 10, args.trials)},
                        "trials_to_within_0.5": trials_needed,
                        "compute_s_to_within_0.5": compute_needed,
                    }
                )
    report(
        "search_efficiency",
        rows,
        {
            "model": args.model,
            "trials": args.trials,
            "search_seeds": args.seeds,
            "training": training,
            "curves": curves,
        },
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
