"""Convergence: metric-against-epoch curves with bands over seeds (t below 30 seeds, BCa from 30),
per-trial convergence figures (epochs to X% of the best, area under the curve, time to the best
epoch), and a search's best-so-far history."""

import numpy as np
import pandas as pd

from analysis.select import comparison_trials


def curves(
    runs: pd.DataFrame,
    metric: str = "val_macro_f1",
    by: tuple[str, ...] = ("dataset", "loss"),
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per group and epoch: mean of `metric` over trials (seeds), the 95% interval of the mean
    (`mean_interval`: Student's t below 30 seeds, BCa bootstrap from 30; NaN, so not drawn, with
    one seed), which interval it is, and n.

    Trials that stopped early contribute to the epochs they ran, so n can fall with the epoch."""
    from analysis.stats import mean_interval  # scipy loads with the first curve, not the package

    rows = comparison_trials(runs).dropna(subset=[metric, "epoch"])
    out = []
    for key, group in rows.groupby([*by, "epoch"], sort=True):
        values = group[metric].to_numpy(dtype=float)
        low, high, interval = mean_interval(values, confidence, seed)
        out.append((*key, values.mean(), low, high, interval, len(values)))
    return pd.DataFrame(out, columns=[*by, "epoch", "mean", "ci_low", "ci_high", "interval", "n"])


def trial_convergence(
    runs: pd.DataFrame, metric: str = "val_macro_f1", fraction: float = 0.95
) -> pd.DataFrame:
    """Per trial: best value and epoch, epochs to reach `fraction` of the best, the normalised area
    under the curve (mean over epochs run), and training seconds until the best epoch."""
    rows = []
    for trial_dir, trial in comparison_trials(runs).dropna(subset=[metric]).groupby("trial_dir"):
        trial = trial.sort_values("epoch")
        values = trial[metric].to_numpy(dtype=float)
        best = int(values.argmax())
        reached = int(np.argmax(values >= fraction * values[best]))
        time_column = "train_time_s" if "train_time_s" in trial else "time_total_s"
        first = trial.iloc[0]
        rows.append(
            {
                "trial_dir": trial_dir,
                "dataset": first["dataset"],
                "loss": first["loss"],
                "seed": first["seed"],
                "best_value": values[best],
                "best_epoch": int(trial["epoch"].iloc[best]),
                f"epochs_to_{round(100 * fraction)}pct": int(trial["epoch"].iloc[reached]),
                "auc": float(values.mean()),
                "seconds_to_best": float(trial[time_column].iloc[best]),
                "epochs_run": int(trial["epoch"].iloc[-1]),
            }
        )
    return pd.DataFrame(rows)


def convergence_summary(per_trial: pd.DataFrame) -> pd.DataFrame:
    """Dataset x loss means of the per-trial convergence figures."""
    numeric = per_trial.drop(columns=["trial_dir", "seed"]).groupby(["dataset", "loss"])
    return numeric.mean().round(4)


def search_history(runs: pd.DataFrame) -> pd.DataFrame:
    """Per searched dataset x loss, trials in order of completion: trial number, the trial's best
    validation score, the best so far, and cumulative compute seconds."""
    search = runs[runs["phase"] == "search"] if "phase" in runs else runs.iloc[0:0]
    if search.empty:
        return pd.DataFrame(columns=["dataset", "loss", "trial", "score", "best_so_far", "compute_s"])
    last = search.sort_values("training_iteration").groupby("trial_dir").tail(1)
    last = last.sort_values("timestamp")
    frames = []
    for (dataset, loss), group in last.groupby(["dataset", "loss"], sort=True):
        score = group["best_score"].astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "loss": loss,
                    "trial": np.arange(1, len(group) + 1),
                    "score": score.to_numpy(),
                    "best_so_far": score.cummax().to_numpy(),
                    "compute_s": group["time_total_s"].astype(float).cumsum().to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
