"""Result tables in markdown, LaTeX (booktabs) and HTML: mean +- std over seeds per loss and
dataset, the best of each column in bold, and marks for significance against the baseline."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.select import comparison_trials, finished
from analysis.stats import mean_interval
from analysis.verdicts import StudyComparison, compare_study

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
    verdicts: StudyComparison  # the tests behind the marks, corrected across each protocol's table

    def cell(
        self, loss: str, dataset: str, bold: tuple[str, str] = ("**", "**"), marks: dict | None = None
    ) -> str:
        """'mean ± std' in percent ('mean (n = 1: no spread)' from one seed), with its mark, bold
        when best in its column."""
        mean = self.mean.loc[loss, dataset]
        if pd.isna(mean):
            return "-"
        std = self.std.loc[loss, dataset]
        spread = "(n = 1: no spread)" if pd.isna(std) else f"± {100 * std:.2f}"
        text = f"{100 * mean:.2f} {spread}"
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
            f"(paired test over seeds, {self.verdicts.correction} across the table, alpha {self.alpha})."
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
    correction: str = "holm",
) -> ResultTable:
    """The table of finished comparison trials; a mark where `compare_study`'s paired test against
    the baseline, corrected (`correction`) across its protocol's whole table, is below alpha."""
    trials = finished(comparison_trials(final))
    stats = trials.groupby(["loss", "dataset"])[metric].agg(["mean", "std", "count"])
    mean, std, n = (stats[c].unstack("dataset") for c in ("mean", "std", "count"))
    baseline = baseline if baseline in mean.index else None
    verdicts = compare_study(final, metric, baseline, alpha=alpha, correction=correction)
    marks = pd.DataFrame("", index=mean.index, columns=mean.columns)
    for protocol in verdicts.protocols:
        for row in protocol.pairs.itertuples():
            if baseline is not None and row.b == baseline and row.p_adjusted < alpha:
                marks.loc[row.a, row.dataset] = BETTER if row.difference > 0 else WORSE
    return ResultTable(mean, std, n, marks, metric, baseline, alpha, verdicts)


def ablation_levels(final: pd.DataFrame, metric: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per ablation factor and level (in the order the study ran them): mean of `metric` over
    seeds with its interval (`mean_interval`: t below 30 seeds, BCa from 30), and n."""
    rows = []
    for (factor, level), group in final.groupby(["factor", "level"], sort=False):
        values = group[metric].to_numpy(dtype=float)
        low, high, _ = mean_interval(values, confidence)
        rows.append(
            (factor, str(level), float(np.nanmean(values)), low, high, int(np.isfinite(values).sum()))
        )
    return pd.DataFrame(rows, columns=["factor", "level", "mean", "ci_low", "ci_high", "n"])
