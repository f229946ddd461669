"""RESULTS.md's G-Loss-O ablation table, recomputed from the committed per-seed scores:
`python docs/results/ablation_table.py` prints the probe's test macro-F1 (mean ± standard
deviation over seeds, in percent) for each sigma (rows) and head learning rate (columns)."""

import re
from pathlib import Path

import pandas as pd

SCORES = Path(__file__).parent / "ablation" / "tables" / "per-seed-scores.csv"
ROW = re.compile(r"gloss_o-s(?P<sigma>[\d.]+)-lr(?P<lr>[\de-]+)")


def ablation_table(scores: pd.DataFrame) -> pd.DataFrame:
    cells = scores["loss"].str.extract(ROW).astype(float)
    scores = scores.assign(sigma=cells["sigma"], lr=cells["lr"], score=100 * scores["score"])
    stats = scores.groupby(["sigma", "lr"])["score"].agg(["mean", "std", "count"])
    text = stats.apply(lambda s: f"{s['mean']:.2f} ± {s['std']:.2f} ({s['count']:.0f})", axis=1)
    return text.unstack("lr")


if __name__ == "__main__":
    print(ablation_table(pd.read_csv(SCORES)).to_markdown())
