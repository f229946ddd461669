"""The headline table: test macro-F1 (chosen by validation) per dataset and loss, mean +- std."""

import pandas as pd

from analysis.select import comparison_trials, finished, unsearched
from common.records import FINISHED, RESULT_METRIC, Status


def outcome_note(final: pd.DataFrame) -> str:
    """Lines on trials that did not finish normally (with the first error), on trials that
    finished after restarts, and on duplicate trial folders ignored; '' when there is nothing."""
    lines = []
    counts = final["outcome"].value_counts()
    unusual = {k: int(v) for k, v in counts.items() if k not in FINISHED}
    if unusual:
        note = ", ".join(f"{count} {outcome}" for outcome, count in unusual.items())
        failed = final[final["outcome"] == Status.FAILED]
        if len(failed):
            first = failed.iloc[0]
            note += f"; first error: {first['error'] or 'no record'} ({first['trial_dir']})"
        unreadable = final[final["outcome"] == Status.UNREADABLE]
        if len(unreadable):
            note += f"; records unreadable: {', '.join(unreadable['trial_dir'])}"
        lines.append(f"trials not finished normally: {note}")
    recovered = (
        final[(final["restarts"] > 0) & (final["outcome"] != Status.FAILED)] if "restarts" in final else []
    )
    if len(recovered):
        lines.append(
            f"{len(recovered)} trials finished after faults, restarted from their checkpoints "
            f"({int(recovered['restarts'].sum())} restarts in all)"
        )
    if note := damage_note(final):
        lines.append(note)
    if "replayed_epochs" in final and (replayed := int(final["replayed_epochs"].sum())):
        trials = int((final["replayed_epochs"] > 0).sum())
        lines.append(
            f"{replayed} epochs trained again in {trials} trials after a resume (each restarted from its "
            "last registered checkpoint); the later record of each such epoch is the one read"
        )
    if "duplicates" in final and (duplicates := int(final["duplicates"].sum())):
        lines.append(f"{duplicates} duplicate trial folders ignored (same dataset, loss, seed and phase)")
    return "\n".join(lines)


def damage_note(final: pd.DataFrame) -> str:
    """Record lines skipped as torn or not JSON, and in how many trials; '' when none were."""
    damaged = final[final["damaged_lines"] > 0] if "damaged_lines" in final else final.iloc[0:0]
    if not len(damaged):
        return ""
    lines = int(damaged["damaged_lines"].sum())
    return (
        f"{lines} damaged record lines skipped (torn or not JSON) in {len(damaged)} trials; "
        f"first: {damaged.iloc[0]['trial_dir']}"
    )


def failed_trials(final: pd.DataFrame) -> int:
    """How many trials ended on an error (the study's exit status reports them)."""
    return int((final["outcome"] == Status.FAILED).sum())


def headline_trials(final: pd.DataFrame) -> pd.DataFrame:
    """Finished trials that answer the study's question; for a search alone, each dataset x
    loss's best trial."""
    trials = finished(comparison_trials(final))
    if len(trials) and (trials["phase"] == "search").all():
        return trials.sort_values("best_score").groupby(["dataset", "loss"]).tail(1)
    return trials


def summary_table(final: pd.DataFrame, metric: str = RESULT_METRIC) -> pd.DataFrame:
    """Dataset x loss cells 'mean +- std (n)' of `metric` in percent ('mean (n = 1: no spread)');
    '(n, unsearched)' where the row ran at its base configuration because its search chose nothing."""
    trials = headline_trials(final)
    if trials.empty:
        return pd.DataFrame()
    trials = trials.assign(unsearched=unsearched(trials))
    stats = trials.groupby(["dataset", "loss"]).agg(
        mean=(metric, "mean"), std=(metric, "std"), count=(metric, "count"), unsearched=("unsearched", "any")
    )
    cells = [
        f"{100 * r['mean']:.2f} "
        + (f"± {100 * r['std']:.2f} ({int(r['count'])}" if r["count"] > 1 else "(n = 1: no spread")
        + f"{', unsearched' if r['unsearched'] else ''})"
        for _, r in stats.iterrows()
    ]
    return pd.Series(cells, index=stats.index).unstack("loss").fillna("-")
