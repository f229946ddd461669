"""Model selection on validation only, and which trials answer a study's question."""

import pandas as pd

from common.records import FINISHED, Status

FROM_LAST = (
    "selected_test_accuracy",
    "selected_test_macro_f1",
    "best_epoch",
    "best_score",
    "error",
    "failures",
    "damaged_lines",
    "replayed_epochs",
)
#: What names one trial of a fixed comparison; a second folder with the same names is a duplicate.
COMPARISON_KEY = ("dataset", "loss", "seed", "phase", "factor", "level")


def outcomes(last: pd.DataFrame) -> pd.Series:
    """Per trial, its last state: completed, early_stopped or diverged as its last record says
    (also after restarts from faults it survived), unreadable when no record of it could be read,
    failed when it ended on an error, else stopped (ended early by the scheduler)."""
    ended = last["status"].isin([*FINISHED, Status.DIVERGED, Status.UNREADABLE])
    failed = (last["error"].fillna("").astype(str) != "") | (last["status"] == Status.FAILED)
    status = last["status"].where(ended, Status.STOPPED)
    return status.where(ended | ~failed, Status.FAILED)


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
    final["restarts"] = last["failures"].fillna(0).astype(int) if "failures" in last else 0
    final["restarts"] = (
        final["restarts"].where(final["outcome"] != Status.FAILED, final["restarts"] - 1).clip(lower=0)
    )
    return drop_duplicates(final.reset_index())


def drop_duplicates(final: pd.DataFrame) -> pd.DataFrame:
    """One trial per identity in the fixed phases (grid, final, ablation): a second folder for the
    same dataset, loss, seed and phase (two drivers of one study) is dropped, keeping a finished
    one; `duplicates` on the kept rows counts what was dropped. Search trials are all kept."""
    fixed = final["phase"] != "search" if "phase" in final else pd.Series(True, index=final.index)
    names = [name for name in COMPARISON_KEY if name in final]
    ranked = final.assign(_rank=(~final["outcome"].isin(FINISHED)).astype(int)).sort_values(
        "_rank", kind="stable"
    )
    keys = pd.util.hash_pandas_object(ranked[names].astype(object), index=False)
    repeated = keys.duplicated() & fixed.loc[ranked.index]
    counts = keys[repeated].value_counts()
    kept = ranked[~repeated].drop(columns="_rank")
    kept["duplicates"] = keys[~repeated].map(counts).fillna(0).astype(int)
    return kept.sort_index().reset_index(drop=True)


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


INTEGRATED, STANDALONE = "integrated", "standalone"
PROTOCOLS = {
    INTEGRATED: "selected on validation macro-F1, scored by the classification head",
    STANDALONE: "selected on validation silhouette, scored by a linear probe",
}


def protocol(frame: pd.DataFrame) -> pd.Series:
    """Per row, how its trial was selected and scored, as its records say: standalone where the
    trial monitored the validation silhouette (and its test scores are a probe's), integrated where
    it monitored the head's macro-F1. Records without `monitor` fall back on `loss_lambda` (1 means
    standalone), then on integrated. Rows of different protocols are different experiments."""
    if "monitor" in frame:
        standalone = frame["monitor"].astype(str) == "val_silhouette"
    elif "loss_lambda" in frame:
        standalone = pd.to_numeric(frame["loss_lambda"], errors="coerce") >= 1.0
    else:
        standalone = pd.Series(False, index=frame.index)
    return standalone.map({True: STANDALONE, False: INTEGRATED})
