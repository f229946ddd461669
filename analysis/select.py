"""Model selection on validation only: one row per trial at its best validation epoch."""

import pandas as pd

FINISHED = ("completed", "early_stopped")
FROM_LAST = ("selected_test_accuracy", "selected_test_macro_f1", "best_epoch", "best_score", "error")


def trial_outcome(last: pd.Series) -> str:
    """completed, early_stopped, diverged, failed, or stopped (ended early by the scheduler)."""
    if last.get("error"):
        return "failed"
    status = last.get("status")
    return status if status in (*FINISHED, "diverged", "failed") else "stopped"


def final_results(runs: pd.DataFrame) -> pd.DataFrame:
    """Per trial, the record of the epoch with the best validation score, with the test metrics
    chosen by validation and the trial's outcome; failed and diverged trials are kept, marked."""
    rows = []
    for _, trial in runs.groupby("trial_dir", sort=False):
        trial = trial.sort_values("epoch") if "epoch" in trial else trial
        last = trial.iloc[-1]
        chosen = trial[trial["epoch"] == last.get("best_epoch")] if "epoch" in trial else trial.iloc[0:0]
        row = (chosen.iloc[-1] if len(chosen) else last).copy()
        for column in FROM_LAST:
            if column in last:
                row[column] = last[column]
        row["outcome"] = trial_outcome(last)
        row["epochs_run"] = last.get("epoch")
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)
