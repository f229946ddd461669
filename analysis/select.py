"""Model selection on validation only, and which trials answer a study's question."""

import pandas as pd

FINISHED = ("completed", "early_stopped")
FROM_LAST = ("selected_test_accuracy", "selected_test_macro_f1", "best_epoch", "best_score", "error")


def outcomes(last: pd.DataFrame) -> pd.Series:
    """Per trial (its last record): completed, early_stopped, diverged, failed, or stopped (ended
    early by the scheduler)."""
    failed = last["error"].fillna("").astype(str) != ""
    status = last["status"].where(last["status"].isin([*FINISHED, "diverged", "failed"]), "stopped")
    return status.where(~failed, "failed")


def final_results(runs: pd.DataFrame) -> pd.DataFrame:
    """Per trial, the record of the epoch with the best validation score, with the test metrics
    chosen by validation and the trial's outcome; failed and diverged trials are kept, marked."""
    ordered = runs.sort_values(["trial_dir", "epoch"], kind="stable") if "epoch" in runs else runs
    last = ordered.groupby("trial_dir", sort=False).tail(1).set_index("trial_dir")
    chosen = last.iloc[0:0]
    if "epoch" in ordered and "best_epoch" in last:
        at_best = ordered["epoch"] == ordered["trial_dir"].map(last["best_epoch"])
        chosen = ordered[at_best].groupby("trial_dir", sort=False).tail(1).set_index("trial_dir")
    final = pd.concat([chosen, last.drop(index=chosen.index)]).reindex(last.index)
    for column in FROM_LAST:
        if column in last:
            final[column] = last[column]
    final["outcome"] = outcomes(last)
    final["epochs_run"] = last.get("epoch")
    return final.reset_index()


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


def unsearched(frame: pd.DataFrame) -> pd.Series:
    """Per row, whether the trial ran at its base configuration in a protocol's final phase
    because its search chose nothing (the `unsearched` tag)."""
    if "unsearched" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["unsearched"].map(lambda value: str(value) == "True")
