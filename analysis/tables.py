"""Result tables in markdown, LaTeX (booktabs) and HTML: mean +- std over seeds per loss and
dataset, the best of each column in bold, and marks for significance against the baseline."""

from dataclasses import dataclass

import pandas as pd

from analysis.select import comparison_trials, finished
from analysis.stats import compare

BETTER, WORSE = "▲", "▼"
LATEX_MARKS = {BETTER: r"$^{\blacktriangle}$", WORSE: r"$^{\blacktriangledown}$"}


@dataclass(frozen=True, eq=False)
class ResultTable:
    """Losses (rows) x datasets (columns): mean, std and n over seeds, and significance marks
    from a paired test against `baseline` on each dataset (Holm-corrected, at `alpha`)."""

    mean: pd.DataFrame
    std: pd.DataFrame
    n: pd.DataFrame
    marks: pd.DataFrame
    metric: str
    baseline: str | None
    alpha: float

    def cell(
        self, loss: str, dataset: str, bold: tuple[str, str] = ("**", "**"), marks: dict | None = None
    ) -> str:
        """'mean ± std' in percent, with its mark, bold when best in its column."""
        mean = self.mean.loc[loss, dataset]
        if pd.isna(mean):
            return "-"
        std = self.std.loc[loss, dataset]
        text = f"{100 * mean:.2f} ± {100 * (0 if pd.isna(std) else std):.2f}"
        mark = self.marks.loc[loss, dataset]
        text += (marks or {}).get(mark, mark)
        best = self.mean[dataset].max()
        return f"{bold[0]}{text}{bold[1]}" if mean == best else text

    def frame(self, bold: tuple[str, str] = ("**", "**"), marks: dict | None = None) -> pd.DataFrame:
        """The formatted cells."""
        return pd.DataFrame(
            {d: [self.cell(loss, d, bold, marks) for loss in self.mean.index] for d in self.mean.columns},
            index=self.mean.index,
        )

    def legend(self) -> str:
        """What the marks mean."""
        if self.baseline is None:
            return f"{self.metric}, mean ± std over seeds in percent; best per dataset in bold."
        return (
            f"{self.metric}, mean ± std over seeds in percent; best per dataset in bold; "
            f"{BETTER}/{WORSE}: significantly better/worse than {self.baseline} "
            f"(paired test over seeds, Holm, alpha {self.alpha})."
        )

    def to_markdown(self) -> str:
        return self.frame().to_markdown() + f"\n\n{self.legend()}\n"

    def to_latex(self) -> str:
        body = self.frame(bold=(r"\textbf{", "}"), marks=LATEX_MARKS)
        body.columns = [c.replace("_", r"\_") for c in body.columns]
        body.index = [i.replace("_", r"\_") for i in body.index]
        latex = body.to_latex(escape=False, column_format="l" + "r" * len(body.columns))
        legend = self.legend().replace(BETTER, "up").replace(WORSE, "down")
        return f"% {legend}\n% needs \\usepackage{{booktabs,amssymb}}\n" + latex.replace("±", r"$\pm$")

    def to_html(self) -> str:
        return (
            self.frame(bold=("<b>", "</b>")).to_html(escape=False) + f"<p class='legend'>{self.legend()}</p>"
        )


def results_table(
    final: pd.DataFrame,
    metric: str = "selected_test_macro_f1",
    baseline: str | None = "ce",
    alpha: float = 0.05,
) -> ResultTable:
    """The table of finished comparison trials; marks need the baseline and at least two seeds."""
    trials = finished(comparison_trials(final))
    stats = trials.groupby(["loss", "dataset"])[metric].agg(["mean", "std", "count"])
    mean, std, n = (stats[c].unstack("dataset") for c in ("mean", "std", "count"))
    marks = pd.DataFrame("", index=mean.index, columns=mean.columns)
    if baseline is not None and baseline in mean.index:
        for dataset, group in trials.groupby("dataset"):
            for loss, mark in significance_marks(group, metric, baseline, alpha).items():
                marks.loc[loss, dataset] = mark
    return ResultTable(mean, std, n, marks, metric, baseline if baseline in mean.index else None, alpha)


def significance_marks(trials: pd.DataFrame, metric: str, baseline: str, alpha: float) -> dict[str, str]:
    """Per loss, a mark when it differs significantly from the baseline over paired seeds."""
    scores = trials.pivot_table(index="seed", columns="loss", values=metric).dropna()
    if baseline not in scores or len(scores) < 2 or scores.shape[1] < 2:
        return {}
    result = compare(scores, baseline=baseline, alpha=alpha)
    significant = result.pairwise[result.pairwise["p_holm"] < alpha]
    return {row.a: BETTER if row.effect_size > 0 else WORSE for row in significant.itertuples()}
