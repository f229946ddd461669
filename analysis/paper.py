"""Our results beside the G-Loss authors' reported numbers (data/paper-results.csv, provenance in
data/PROVENANCE.md)."""

import importlib.resources

import pandas as pd

from analysis.select import comparison_trials, finished

INTEGRATED = {"ce": "ce", "supcon": "scl+ce", "gloss": "gloss_o+ce"}
STANDALONE = {"supcon": "scl", "gloss": "gloss_o", "triplet": "triplet", "cosine_mse": "cos_sim"}


def paper_results() -> pd.DataFrame:
    """The authors' figures: mode, model, dataset, loss, metric, value, std, seeds."""
    with importlib.resources.files("analysis").joinpath("data/paper-results.csv").open() as handle:
        return pd.read_csv(handle)


def paper_loss(loss: str, lam: float, sigma: object) -> tuple[str, str] | None:
    """The paper's (mode, loss) name for one of our trials, or None when the paper has no match."""
    if lam >= 1.0:
        return ("standalone", STANDALONE[loss]) if loss in STANDALONE else None
    if loss == "gloss" and sigma == "sqrt":
        return "integrated", "gloss_sqrt+ce"
    return ("integrated", INTEGRATED[loss]) if loss in INTEGRATED else None


def paper_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x loss with a counterpart in the paper: our test accuracy and macro-F1 (mean and
    std over seeds, percent) beside the paper's, with both models named."""
    trials = finished(comparison_trials(final)).copy()
    sigma = trials.get("config/loss_params/sigma", pd.Series(None, index=trials.index))
    trials["paper"] = [
        paper_loss(loss, lam, s)
        for loss, lam, s in zip(trials["loss"], trials["loss_lambda"], sigma, strict=True)
    ]
    trials = trials[trials["paper"].notna()]
    reference = paper_results().set_index(["mode", "dataset", "loss", "metric"])
    rows = []
    for (dataset, loss, paper), group in trials.groupby(["dataset", "loss", "paper"]):
        row = {
            "dataset": dataset,
            "loss": loss,
            "mode": paper[0],
            "paper_loss": paper[1],
            "our_model": f"{group['model'].iloc[0]} ({group['fidelity'].iloc[0]})",
            "seeds": len(group),
        }
        for metric in ("accuracy", "macro_f1"):
            ours = 100 * group[f"selected_test_{metric}"]
            row[f"ours_{metric}"] = f"{ours.mean():.2f} ± {ours.std() if len(ours) > 1 else 0:.2f}"
            key = (paper[0], dataset, paper[1], metric)
            if key in reference.index:
                ref = reference.loc[[key]].iloc[0]
                row[f"paper_{metric}"] = f"{ref['value']:.2f}" + (
                    f" ± {ref['std']:.2f}" if pd.notna(ref["std"]) else ""
                )
                row["paper_model"] = ref["model"]
        rows.append(row)
    return pd.DataFrame(rows)
