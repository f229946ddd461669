"""Holm's step-down correction (Holm 1979) checked on the project's own output, against a hand
computation written here from the definition, not against the library the project calls: the
pairwise table of `compare`, the family-wide `p_adjusted` of `compare_study` (every dataset x pair
of a protocol's table in one family), and Demsar's (2006) published example run through
`compare_study`'s arithmetic."""

import numpy as np
import pandas as pd

from analysis.stats import compare
from analysis.verdicts import compare_study
from tests.test_verdicts import final_frame


def holm_by_hand(p: list[float]) -> list[float]:
    """Sort ascending; the i-th smallest (from 0) is multiplied by m - i; running maximum; cap 1."""
    order = np.argsort(p, kind="stable")
    adjusted, running = np.empty(len(p)), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def test_the_hand_computation_on_demsars_published_example():
    """Demsar (2006) Sec. 3.2.2: p = 0.016, 0.019, 0.607 against a control; Holm rejects the
    first two at 0.05 (0.016 < 0.05/3, 0.019 < 0.05/2) and not the third."""
    adjusted = holm_by_hand([0.016, 0.019, 0.607])
    np.testing.assert_allclose(adjusted, [0.048, 0.048, 0.607])
    assert [p < 0.05 for p in adjusted] == [True, True, False]


def test_compares_holm_column_is_holm_of_its_p_column():
    rng = np.random.default_rng(3)
    shifts = {"ce": 0, "a": 0.01, "b": 0.003, "c": 0}
    scores = pd.DataFrame({name: 0.8 + shift + rng.normal(0, 0.01, 8) for name, shift in shifts.items()})
    table = compare(scores, baseline="ce").pairwise
    assert len(table) == 3 and table["p"].nunique() == 3
    np.testing.assert_allclose(table["p_holm"], holm_by_hand(table["p"].tolist()))


def test_the_family_is_every_dataset_and_pair_of_the_table():
    """Three rows against ce on three datasets: one family of 6 tests per protocol, not a family
    per dataset (control: the per-dataset correction gives other numbers, so the test can fail)."""
    final = final_frame({"a": 0.01, "b": 0.004}, seeds=5, datasets=("mr", "r8", "r52"))
    pairs = compare_study(final, baseline="ce").protocols[0].pairs
    assert len(pairs) == 6
    np.testing.assert_allclose(pairs["p_adjusted"], holm_by_hand(pairs["p"].tolist()))
    per_dataset = pairs.groupby("dataset")["p"].transform(lambda p: holm_by_hand(p.tolist()))
    assert not np.allclose(per_dataset, pairs["p_adjusted"]), "control: a per-dataset family differs"
