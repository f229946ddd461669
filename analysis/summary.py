"""The headline table: test macro-F1 (chosen by validation) per dataset and loss, mean +- std."""

import pandas as pd

METRIC = "selected_test_macro_f1"


def headline_trials(final: pd.DataFrame) -> pd.DataFrame:
    """Trials that answer the study's question: the final runs, not the search that chose them
    (for a search alone, each dataset x loss's best trial)."""
    finished = final[final["outcome"].isin(["completed", "early_stopped"])]
    if (finished["phase"] != "search").any():
        return finished[finished["phase"] != "search"]
    best = finished.sort_values("best_score").groupby(["dataset", "loss"]).tail(1)
    return best


def summary_table(final: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """Dataset x loss cells 'mean +- std (n)' of `metric` in percent."""
    trials = headline_trials(final)
    grouped = trials.groupby(["dataset", "loss"])[metric]
    cells = grouped.agg(["mean", "std", "count"]).apply(
        lambda r: (
            f"{100 * r['mean']:.2f} ± {100 * (r['std'] if r['count'] > 1 else 0):.2f} ({int(r['count'])})"
        ),
        axis=1,
    )
    return cells.unstack("loss").fillna("-")
