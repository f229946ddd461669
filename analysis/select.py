"""Model selection on validation only, and which trials answer a study's question."""

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


COMPARISON_PHASES = ("grid", "final")


def comparison_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the trials that compare losses at fixed settings: a grid, or a protocol's final
    runs (not the search that chose them); a study without those compares what it has (an
    ablation's or a search's trials). Works on runs and on final results alike."""
    if "phase" not in frame:
        return frame
    main = frame["phase"].isin(COMPARISON_PHASES)
    if main.any():
        return frame[main]
    ablation = frame["phase"] == "ablation"
    return frame[ablation] if ablation.any() else frame


def finished(final: pd.DataFrame) -> pd.DataFrame:
    """Final results of trials that completed or stopped early on their own."""
    return final[final["outcome"].isin(FINISHED)]
