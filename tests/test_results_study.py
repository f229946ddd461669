"""RESULTS.md's study (docs/results/study.yaml) is the `paper-frozen` experiment with the cuts
RESULTS.md declares and nothing else: the same rows plus the two untrained controls, the same
sampler, learning rates and training settings, a shorter budget (12 search trials, at most 60
epochs, patience 5) and 10 seeds, on all five datasets."""

import yaml

from tests.conftest import REPO


def spec(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


def test_the_results_study_is_paper_frozen_with_its_declared_cuts():
    results, frozen = spec("docs/results/study.yaml"), spec("study/presets/paper-frozen.yaml")
    controls = ["none", {"name": "none_probe", "loss": "none", "params": {"lam": 1.0}}]
    assert [row for row in results["losses"] if row not in controls] == frozen["losses"]
    assert all(row in results["losses"] for row in controls)
    assert results["training"] == {**frozen["training"], "epochs": 60, "patience": 5}
    assert results["search"] == {**frozen["search"], "trials": 12, "seed": 100}
    for key in ("kind", "model", "fidelity", "resources", "max_failures"):
        assert results[key] == frozen[key], key
    assert set(results["datasets"]) == set(frozen["datasets"]) and results["seeds"] == list(range(10))
