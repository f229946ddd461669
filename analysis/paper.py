"""Our results beside the G-Loss authors' reported numbers (data/paper-results.csv, provenance in
data/PROVENANCE.md), only where our row is the paper's method."""

import importlib.resources

import pandas as pd

from analysis.select import comparison_trials, finished
from common.records import config_column

# The paper's rows: the registry loss each is and, for G-Loss, the authors' form of the loss
# (our `reference` variant) and its kernel width ("sqrt" heuristic, or a number the search tuned).
GLOSS_O, GLOSS_SQRT = ("gloss", "reference", "tuned"), ("gloss", "reference", "sqrt")
PAPER_ROWS = {
    "ce": ("ce", None, None),
    "scl+ce": ("supcon", None, None),
    "gloss_o+ce": GLOSS_O,
    "gloss_sqrt+ce": GLOSS_SQRT,
    "triplet": ("triplet", None, None),
    "cos_sim": ("cosine_mse", None, None),
    "scl": ("supcon", None, None),
    "gloss_o": GLOSS_O,
}
CONFIG = {name: config_column("loss_params", name) for name in ("variant", "sigma")}


def paper_results() -> pd.DataFrame:
    """The authors' figures: mode, model, dataset, loss, metric, value, std, seeds."""
    with importlib.resources.files("analysis").joinpath("data/paper-results.csv").open() as handle:
        return pd.read_csv(handle)


def paper_row(trial: pd.Series) -> tuple[str, str] | None:
    """The paper's (mode, loss) for one of our trials, or None: the row must carry the paper's
    name and be the same loss in the same form (registry loss; for G-Loss the reference variant
    and the same kind of kernel width); its mode (standalone when lam = 1) picks the paper's
    table."""
    if trial["loss"] not in PAPER_ROWS:
        return None
    function, variant, sigma = PAPER_ROWS[trial["loss"]]
    if trial.get("loss_function", function) != function:
        return None
    if variant is not None and trial.get(CONFIG["variant"]) != variant:
        return None
    if sigma is not None and (trial.get(CONFIG["sigma"]) == "sqrt") != (sigma == "sqrt"):
        return None
    return ("standalone" if trial["loss_lambda"] >= 1.0 else "integrated"), trial["loss"]


def paper_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x row with an exact counterpart in the paper: our test accuracy and macro-F1
    (mean and std over seeds, percent) beside the paper's, with both models named."""
    trials = finished(comparison_trials(final)).copy()
    trials["paper"] = [paper_row(trial) for _, trial in trials.iterrows()]
    trials = trials[trials["paper"].notna()]
    reference = paper_results().set_index(["mode", "dataset", "loss", "metric"])
    rows = []
    for (dataset, loss, paper), group in trials.groupby(["dataset", "loss", "paper"]):
        keys = {metric: (paper[0], dataset, paper[1], metric) for metric in ("accuracy", "macro_f1")}
        if not any(key in reference.index for key in keys.values()):
            continue
        row = {
            "dataset": dataset,
            "loss": loss,
            "mode": paper[0],
            "paper_loss": paper[1],
            "our_model": f"{group['model'].iloc[0]} ({group['fidelity'].iloc[0]})",
            "seeds": len(group),
        }
        for metric, key in keys.items():
            ours = 100 * group[f"selected_test_{metric}"]
            spread = f"± {ours.std():.2f}" if len(ours) > 1 else "(n = 1: no spread)"
            row[f"ours_{metric}"] = f"{ours.mean():.2f} {spread}"
            if key in reference.index:
                ref = reference.loc[[key]].iloc[0]
                row[f"paper_{metric}"] = f"{ref['value']:.2f}" + (
                    f" ± {ref['std']:.2f}" if pd.notna(ref["std"]) else ""
                )
                row["paper_model"] = ref["model"]
        rows.append(row)
    return pd.DataFrame(rows)


def paper_caveat(final: pd.DataFrame) -> str:
    """A sentence when our trials ran at another fidelity or scale than the paper's (full
    fine-tuning on the whole training sets), so their numbers are not comparable; '' otherwise."""
    trials = finished(comparison_trials(final))
    reasons = []
    fidelities = sorted(set(trials.get("fidelity", pd.Series(dtype=str)).dropna().astype(str)) - {"full"})
    if fidelities:
        reasons.append(f"fidelity {', '.join(fidelities)} (the paper fine-tunes the whole encoder)")
    sizes = pd.to_numeric(trials.get(config_column("train_size"), pd.Series(dtype=float)), errors="coerce")
    sizes = sizes.dropna()
    if len(sizes):
        reasons.append(f"at most {int(sizes.max())} training examples per dataset")
    if not reasons:
        return ""
    return (
        "Caveat: these trials ran at " + "; ".join(reasons) + ", not at the paper's scale: the columns "
        "below are not comparable, and a gap between them says nothing about the losses."
    )
