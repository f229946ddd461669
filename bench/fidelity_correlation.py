"""Issue 14, item 1: does a configuration's frozen-fidelity score predict its full fine-tuning score?

    .venv/bin/python -m bench.fidelity_correlation [--datasets r8 mr --gloss-configs 12]
    .venv/bin/python -m bench.fidelity_correlation --smoke   # tiny-bert, R8, 3 configurations

The same configurations run at both fidelities, in this process, one after another:
- full fine-tuning of MiniLM on a stratified 1,000-document training subset at 64 tokens, 3 epochs;
- frozen MiniLM embeddings (same 64 tokens) of the whole training set, a head for up to 20 epochs
  (patience 5), as a screening trial would run.
Both score on the same stratified validation subset (`eval_size`), in integrated mode (the CE
head's best validation macro-F1). Configurations: G-Loss (full graph, harmonic) at Latin-hypercube
points over (lr, lambda, sigma, gamma) in the default search space, plus CE and SupCon at three
learning rates each. A learning rate is a position in its fidelity's range (`study.spaces`:
full 1e-5..1e-4, frozen 2e-4..5e-3, log scale): the same quantile at both fidelities.

Reported per dataset, for the G-Loss configurations (what a per-loss search screens) and for all:
Spearman's rho and Kendall's tau with 95% bootstrap intervals (configurations resampled), whether
the frozen top-3 holds the full-fidelity best, and how often it does over bootstrap resamples.
Every finished run is appended to results/fidelity_correlation_runs.jsonl (not committed: the
results file holds the runs) and skipped when found there, so an interrupted hour resumes where
it stopped; `--report-only` computes the statistics from that file alone.
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.stats import qmc

from bench.common import RESULTS, parse, report
from study.spaces import LEARNING_RATE, Distribution, default_space
from trainables.config import TrialConfig
from trainables.training.trainer import Trainer

GLOSS_PARAMS = ("lam", "sigma", "gamma")
BASELINE_QUANTILES = (0.1, 0.5, 0.9)
FIDELITIES = ("frozen", "full")


def at_quantile(distribution: Distribution, u: float) -> float:
    """The value at position u in [0, 1] of a continuous range (log scale for log_uniform)."""
    if distribution.kind == "log_uniform":
        low, high = math.log(distribution.low), math.log(distribution.high)
        return math.exp(low + u * (high - low))
    return distribution.low + u * (distribution.high - distribution.low)


def configurations(gloss_configs: int) -> list[dict]:
    """Named configurations: G-Loss at Latin-hypercube points, CE and SupCon at three lr quantiles.
    Each holds the lr's quantile and the loss parameters, the same at both fidelities."""
    space = default_space("gloss")
    points = qmc.LatinHypercube(d=1 + len(GLOSS_PARAMS), seed=0).random(gloss_configs)
    chosen = [
        {
            "name": f"gloss-{i:02d}",
            "loss": "gloss",
            "lr_quantile": float(point[0]),
            "loss_params": {
                name: round(at_quantile(space[name], float(u)), 4)
                for name, u in zip(GLOSS_PARAMS, point[1:], strict=True)
            },
        }
        for i, point in enumerate(points)
    ]
    for loss, params in (("ce", {}), ("supcon", {"lam": 0.9})):
        chosen += [
            {"name": f"{loss}-lr{u}", "loss": loss, "lr_quantile": u, "loss_params": params}
            for u in BASELINE_QUANTILES
        ]
    return chosen


def trial_config(configuration: dict, dataset: str, fidelity: str, args: argparse.Namespace) -> TrialConfig:
    """The configuration as one trial at one fidelity."""
    per_fidelity = {
        "full": {"train_size": args.train_size, "epochs": args.full_epochs, "patience": None},
        "frozen": {"train_size": args.frozen_train_size, "epochs": args.frozen_epochs, "patience": 5},
    }[fidelity]
    return TrialConfig.from_dict(
        {
            "dataset": dataset,
            "loss": configuration["loss"],
            "loss_params": configuration["loss_params"],
            "model": args.model,
            "fidelity": fidelity,
            "lr": at_quantile(LEARNING_RATE[fidelity], configuration["lr_quantile"]),
            "max_length": args.max_length,
            "batch_size": 32,
            "eval_size": args.eval_size,
            "seed": 0,
            **per_fidelity,
        }
    )


def run_trial(config: TrialConfig) -> dict:
    """Train to the end; the best validation score and the seconds it took."""
    start = time.perf_counter()
    records = list(Trainer(config).run())
    return {"score": float(records[-1]["best_score"]), "seconds": time.perf_counter() - start}


def run_key(run: dict) -> tuple[str, str, str]:
    return run["dataset"], run["name"], run["fidelity"]


def recorded_runs(runs_file: Path, datasets: list[str]) -> list[dict]:
    """The runs `runs_file` holds for `datasets`."""
    lines = runs_file.read_text().splitlines() if runs_file.exists() else []
    return [run for run in map(json.loads, lines) if run["dataset"] in datasets]


def all_runs(args: argparse.Namespace, runs_file: Path) -> list[dict]:
    """Every (dataset, configuration, fidelity) run, reusing those already in `runs_file`."""
    done = recorded_runs(runs_file, args.datasets)
    finished = {run_key(run) for run in done}
    for dataset in args.datasets:
        for fidelity in FIDELITIES:  # frozen first: its embeddings are cached once
            for configuration in configurations(args.gloss_configs):
                run = {"dataset": dataset, "fidelity": fidelity, **configuration}
                if run_key(run) in finished:
                    continue
                run.update(run_trial(trial_config(configuration, dataset, fidelity, args)))
                print(f"{dataset} {fidelity:6s} {run['name']:12s} {run['score']:.4f} {run['seconds']:.0f}s")
                done.append(run)
                with runs_file.open("a") as out:
                    out.write(json.dumps(run) + "\n")
    return done


def rank_agreement(frozen: np.ndarray, full: np.ndarray, rng: np.random.Generator) -> dict:
    """Spearman and Kendall with bootstrap intervals; whether the frozen top-3 holds the full best,
    on the configurations measured and over bootstrap resamples of them."""
    row: dict = {"configs": len(full)}
    for name, statistic in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        row[name] = float(statistic(frozen, full)[0])
        interval = stats.bootstrap(
            (frozen, full),
            lambda x, y, statistic=statistic: statistic(x, y)[0],
            paired=True,
            vectorized=False,
            n_resamples=2000,
            method="percentile",
            random_state=rng,
        ).confidence_interval
        row[f"{name}_95ci"] = [round(float(interval.low), 3), round(float(interval.high), 3)]
    row["frozen_top3_holds_full_best"] = bool(top3_holds_best(frozen, full))
    resamples = rng.integers(0, len(full), size=(2000, len(full)))
    held = [top3_holds_best(frozen[i], full[i]) for i in resamples]
    row["p_top3_holds_best_bootstrap"] = float(np.mean(held))
    order = np.argsort(-frozen)
    row["full_best"] = float(full.max())
    row["full_of_frozen_top3_best"] = float(full[order[:3]].max())
    return row


def learning_rate_dependence(lr: np.ndarray, frozen: np.ndarray, full: np.ndarray) -> dict:
    """How each fidelity's score follows the learning rate (Spearman with its quantile), where the
    full-fidelity best ranks among the frozen scores, and each fidelity's score range."""
    full_vs_lr = stats.spearmanr(lr, full)
    return {
        "frozen_vs_lr_spearman": float(stats.spearmanr(lr, frozen)[0]),
        "full_vs_lr_spearman": float(full_vs_lr[0]),
        "full_vs_lr_p": float(full_vs_lr[1]),
        "frozen_rank_of_full_best": int((frozen > frozen[np.argmax(full)]).sum() + 1),
        "frozen_range": [round(float(frozen.min()), 4), round(float(frozen.max()), 4)],
        "full_range": [round(float(full.min()), 4), round(float(full.max()), 4)],
    }


def top3_holds_best(frozen: np.ndarray, full: np.ndarray) -> bool:
    """Whether a configuration with the best full score is among the three best frozen ones."""
    top3 = np.argsort(-frozen, kind="stable")[:3]
    return bool(np.isclose(full[top3].max(), full.max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["r8", "mr"])
    parser.add_argument("--gloss-configs", type=int, default=12)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--train-size", type=int, default=1000, help="full fidelity's training subset")
    parser.add_argument("--frozen-train-size", type=int, default=None, help="None: the whole set")
    parser.add_argument("--eval-size", type=int, default=500, help="the validation (and test) subset")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--full-epochs", type=int, default=3)
    parser.add_argument("--frozen-epochs", type=int, default=20)
    parser.add_argument(
        "--report-only", action="store_true", help="no training: the statistics of the runs file's pairs"
    )
    args = parse(
        parser,
        {
            "datasets": ["r8"],
            "gloss_configs": 3,
            "model": "tiny-bert",
            "train_size": 64,
            "frozen_train_size": 128,
            "eval_size": 48,
            "full_epochs": 2,
            "frozen_epochs": 3,
        },
    )
    runs_file = RESULTS / f"fidelity_correlation{'_smoke' if args.smoke else ''}_runs.jsonl"
    if args.smoke and not args.report_only:
        runs_file.unlink(missing_ok=True)
    runs = all_runs(args, runs_file) if not args.report_only else recorded_runs(runs_file, args.datasets)
    rows = []
    rng = np.random.default_rng(0)
    for dataset in args.datasets:
        scores = {(r["name"], r["fidelity"]): r["score"] for r in runs if r["dataset"] == dataset}
        chosen = [
            c
            for c in configurations(args.gloss_configs)
            if {(c["name"], f) for f in FIDELITIES} <= set(scores)
        ]
        for group, members in (("gloss", [c for c in chosen if c["loss"] == "gloss"]), ("all", chosen)):
            frozen, full = (np.array([scores[c["name"], f] for c in members]) for f in FIDELITIES)
            lr = np.array([c["lr_quantile"] for c in members])
            rows.append(
                {
                    "dataset": dataset,
                    "configs_of": group,
                    **rank_agreement(frozen, full, rng),
                    **learning_rate_dependence(lr, frozen, full),
                }
            )
    report(
        "fidelity_correlation",
        rows,
        {"settings": vars(args), "runs": runs},
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
