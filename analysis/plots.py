"""Figures that render computed results (they compute nothing of their own): convergence curves,
critical-difference diagram, ablation sensitivity, search history and 2-D test embeddings.

Each function returns a matplotlib Figure built without pyplot, so it works in scripts, reports
and notebooks alike; `save_figure` writes PNG and SVG."""

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.stats import Comparison
from common.atomic import atomic_path

sns.set_theme(style="whitegrid", context="paper")


def _grid(count: int, width: float = 4.2, height: float = 3.2, columns: int = 3) -> tuple[Figure, list]:
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for extra in axes[count:]:
        extra.set_visible(False)
    return figure, list(axes[:count])


def _palette(names: list[str]) -> dict[str, tuple]:
    return dict(zip(sorted(names), sns.color_palette("tab10", len(names)), strict=True))


def convergence_figure(curve: pd.DataFrame, metric: str) -> Figure:
    """One panel per dataset, one colour per loss: mean over seeds with its band (`curves`), in
    percent, epochs on integer ticks."""
    datasets = sorted(curve["dataset"].unique())
    figure, axes = _grid(len(datasets))
    colours = _palette(list(curve["loss"].unique()))
    for ax, dataset in zip(axes, datasets, strict=True):
        for loss, group in curve[curve["dataset"] == dataset].groupby("loss"):
            ax.plot(group["epoch"], 100 * group["mean"], label=loss, color=colours[loss])
            ax.fill_between(
                group["epoch"], 100 * group["ci_low"], 100 * group["ci_high"], color=colours[loss], alpha=0.2
            )
        ax.set(title=dataset, xlabel="epoch", ylabel=f"{metric} (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(title="loss", fontsize="small")
    return figure


def cd_diagram(comparison: Comparison) -> Figure:
    """Mean ranks across blocks; methods joined by a bar are not significantly different
    (pairwise tests, Holm); the Nemenyi critical difference is drawn above the axis."""
    import scikit_posthocs

    methods = list(comparison.methods)
    p_values = pd.DataFrame(1.0, index=methods, columns=methods)
    for row in comparison.pairwise.itertuples():
        p_values.loc[row.a, row.b] = p_values.loc[row.b, row.a] = row.p_holm
    figure = Figure(figsize=(7, 1.2 + 0.3 * len(methods)), layout="constrained")
    ax = figure.subplots()
    scikit_posthocs.critical_difference_diagram(
        comparison.mean_ranks, p_values, cd=comparison.critical_difference, alpha=comparison.alpha, ax=ax
    )
    ax.grid(False)
    ax.set_xlim(1, len(methods))
    figure.suptitle(
        f"Mean rank over {comparison.n_blocks} blocks (1 = best); Friedman p = {comparison.friedman_p:.3g}, "
        f"Iman-Davenport p = {comparison.iman_davenport_p:.3g}\n"
        "bars join methods not significantly different (pairwise tests, Holm)",
        fontsize="small",
    )
    return figure


def ablation_figure(levels: pd.DataFrame, metric: str) -> Figure:
    """One panel per factor: `metric` at each level, the mean with its interval (`ablation_levels`)."""
    factors = list(dict.fromkeys(levels["factor"]))
    figure, axes = _grid(len(factors))
    for ax, factor in zip(axes, factors, strict=True):
        rows = levels[levels["factor"] == factor]
        below, above = rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]
        ax.errorbar(
            rows["level"],
            100 * rows["mean"],
            yerr=[100 * below.fillna(0), 100 * above.fillna(0)],
            marker="o",
            capsize=3,
        )
        ax.set(title=factor, xlabel="level", ylabel=f"{metric} (%)")
        ax.tick_params(axis="x", labelrotation=30)
    return figure


def search_history_figure(history: pd.DataFrame) -> Figure:
    """Best validation score so far, one column per dataset, one colour per loss: against trial
    number (top row) and against compute time (bottom row); one legend beside the panels, so a
    study of many searches stays readable."""
    datasets = sorted(history["dataset"].unique())
    colours = _palette(list(history["loss"].unique()))
    figure = Figure(figsize=(3.6 * len(datasets) + 1.6, 5.6), layout="constrained")
    axes = np.atleast_2d(figure.subplots(2, len(datasets), squeeze=False))
    for column, dataset in enumerate(datasets):
        by_trial, by_time = axes[0, column], axes[1, column]
        for loss, group in history[history["dataset"] == dataset].groupby("loss"):
            by_trial.step(group["trial"], group["best_so_far"], where="post", color=colours[loss], label=loss)
            by_time.step(group["compute_s"], group["best_so_far"], where="post", color=colours[loss])
        by_trial.set(title=dataset, xlabel="trial", ylabel="best validation score so far")
        by_trial.xaxis.set_major_locator(MaxNLocator(integer=True))
        by_time.set(xlabel="compute seconds (sum over trials)", ylabel="best validation score so far")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, title="loss", loc="outside right upper", fontsize="small")
    return figure


def embeddings_figure(embeddings: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Per loss, test embeddings projected on their first two principal components, by class."""
    from sklearn.decomposition import PCA

    figure, axes = _grid(len(embeddings))
    for ax, (loss, (vectors, labels)) in zip(axes, sorted(embeddings.items()), strict=True):
        points = PCA(n_components=2, random_state=0).fit_transform(vectors)
        sns.scatterplot(
            x=points[:, 0], y=points[:, 1], hue=labels.astype(str), s=8, ax=ax, legend=False, palette="tab20"
        )
        ax.set(title=loss, xlabel="PC 1", ylabel="PC 2")
    return figure


def save_figure(figure: Figure, folder: Path, name: str) -> list[Path]:
    """Write `name`.png and `name`.svg into `folder`."""
    paths = [folder / f"{name}.{suffix}" for suffix in ("png", "svg")]
    for path in paths:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=150, format=path.suffix[1:])
    return paths
