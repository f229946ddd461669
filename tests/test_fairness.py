"""One comparison, one set of conditions: unfair specs are refused in one line naming the key,
declared differences are accepted, the `paper` preset is the paper's experiment, fixed values are
never searched, a diverged trial never wins a search, and unsearched rows say so."""

import csv
import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from common.errors import ConfigError
from study.cli import main
from study.fairness import sampler_text, shared_conditions
from study.launch import best_configs
from study.plan import final_phase, phases
from study.presets import preset_text
from study.spec import parse_yaml, spec_from_mapping
from trainables.config import TrialConfig
from trainables.data.batches import GROUP_WINDOW, ClassAwareBatches, RandomBatches
from trainables.losses.registry import LOSSES
from trainables.training.parts import batch_order

BASE = {"name": "t", "kind": "grid", "datasets": ["r8"], "losses": ["ce", "gloss"], "seeds": [0, 1]}
PAPER_CSV = Path(__file__).resolve().parents[1] / "analysis" / "data" / "paper-results.csv"


def spec(**changes):
    return spec_from_mapping({**BASE, **changes}, "t.yaml")


def refusal(**changes) -> str:
    with pytest.raises(ConfigError) as caught:
        phases(spec(**changes))
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    return message


def gloss_row(**params) -> dict:
    return {"name": "g", "loss": "gloss", "params": params}


UNFAIR = [
    (
        {"kind": "search", "search": {"space": {"gloss": {"lr": {"log_uniform": [1e-4, 1e-3]}}}}},
        "search.space.gloss.lr: row 'gloss' has lr searched over log_uniform [0.0001, 0.001] but row 'ce' "
        "has lr searched over log_uniform [0.0002, 0.005]",
        "lr",
    ),
    (
        {"losses": ["ce", gloss_row(batch_sampler="class_aware")]},
        "losses.1.params.batch_sampler: row 'g' has batch_sampler class_aware but row 'ce' has "
        "batch_sampler random",
        "sampler",
    ),
    (
        {"losses": ["ce", gloss_row(epochs=40)], "training": {"epochs": 20}},
        "losses.1.params.epochs: row 'g' has epochs 40 but row 'ce' has epochs 20",
        "epochs",
    ),
    (
        {"losses": [gloss_row(patience=3), "ce", "supcon"]},
        "losses.0.params.patience: row 'g' has patience 3 but row 'ce' has patience 10",
        "early_stopping",
    ),
    (
        {"kind": "protocol", "search": {"losses": ["gloss"], "trials": 4}},
        "search.losses: row 'gloss' has budget 4 search trials but row 'ce' has budget 0 search trials",
        "budget",
    ),
    (
        {"losses": ["ce", gloss_row(lr=0.01)], "kind": "search"},
        "losses.1.params.lr: row 'g' has lr 0.01 but row 'ce' has lr searched over log_uniform",
        "lr",
    ),
]


@pytest.mark.parametrize(("changes", "start", "condition"), UNFAIR)
def test_an_unfair_spec_is_refused_naming_the_key(changes, start, condition):
    message = refusal(**changes)
    assert message.startswith(start), message
    assert message.endswith(f"declare the difference on purpose with `differences: [{condition}]`.")


@pytest.mark.parametrize(("changes", "start", "condition"), UNFAIR)
def test_a_declared_difference_is_accepted(changes, start, condition):
    assert phases(spec(**changes, differences=[condition]))


def test_the_study_wide_sampler_applies_to_every_row():
    (grid,) = phases(spec(training={"batch_sampler": "class_aware"}))
    assert {g.config.batch_sampler for g in grid.groups} == {"class_aware"}
    (grid,) = phases(spec())
    assert {g.config.batch_sampler for g in grid.groups} == {"random"}


def test_an_unknown_difference_is_refused():
    assert refusal(differences=["lrr"]).startswith(
        "differences: 'lrr' is not a condition (did you mean 'lr'?)"
    )


def test_a_fixed_value_is_never_searched():
    fixed = {"gloss": {"sigma": "sqrt", "k": 8, "propagation": "harmonic"}}
    (search,) = phases(spec(kind="search", loss_params=fixed))
    gloss = next(g for g in search.groups if g.row == "gloss")
    assert gloss.config.loss_params.sigma == "sqrt" and gloss.config.loss_params.k == 8
    assert set(gloss.space) == {"lr", "lam", "gamma"}, "sigma, k, propagation fixed; alpha cannot apply"
    (search,) = phases(spec(kind="search", losses=["ce", gloss_row(sigma="sqrt")]))
    assert "sigma" not in search.groups[1].space
    message = refusal(
        kind="search", loss_params=fixed, search={"space": {"gloss": {"sigma": {"uniform": [0.1, 1.0]}}}}
    )
    assert message.startswith("search.space.gloss.sigma: loss_params.gloss.sigma fixes sigma for row 'gloss'")


def test_a_fixed_learning_rate_is_the_same_for_every_row():
    (search,) = phases(spec(kind="search", training={"lr": 1e-3}))
    assert all("lr" not in g.space for g in search.groups)
    message = refusal(kind="search", training={"lr": 1e-3}, search={"lr": {"log_uniform": [1e-4, 1e-2]}})
    assert message.startswith("search.lr: training.lr fixes the learning rate")


def test_rows_name_the_records_and_keep_the_registry_loss():
    rows = ["ce", {"name": "gloss_sqrt+ce", "loss": "gloss", "params": {"sigma": "sqrt"}}]
    (grid,) = phases(spec(losses=rows))
    config = grid.searcher().configs[-1]
    assert (config["method"], config["loss"], config["loss_params"]["sigma"]) == (
        "gloss_sqrt+ce",
        "gloss",
        "sqrt",
    )
    assert grid.searcher().configs[0]["method"] == "ce"
    refused = refusal(losses=["ce", gloss_row(seed=5)])
    assert refused.startswith("t.yaml: losses.1.params.seed: a row cannot set seed")
    with pytest.raises(ConfigError, match=r"^t.yaml: losses: \['ce', 'ce'\] repeats an entry"):
        spec(losses=["ce", {"name": "ce", "loss": "gloss"}])
    with pytest.raises(ConfigError, match=r"^t.yaml: search.losses: 'gloss' is not a row of this study"):
        spec(losses=["ce", gloss_row()], search={"losses": ["gloss"]})


def test_the_search_trains_on_its_own_seed():
    search, _ = phases(spec(kind="protocol", seeds=[0, 1, 2]))
    assert {g.seeds for g in search.groups} == {(3,)}
    with pytest.raises(ConfigError, match=r"^t.yaml: search.seed: 1 is also one of seeds \[0, 1\]"):
        spec(kind="protocol", search={"seed": 1})
    search, _ = phases(spec(kind="protocol", search={"seed": 1, "reuse_seed": True}))
    assert {g.seeds for g in search.groups} == {(1,)}


def test_a_row_without_a_search_winner_runs_marked_unsearched():
    study = spec(kind="protocol", seeds=[0, 1])
    won = {"dataset": "r8", "loss": "gloss", "method": "gloss", "lr": 3e-3, "seed": 2, "phase": "search"}
    configs = final_phase(study, {("r8", "gloss"): won}).searcher().configs
    ce = [c for c in configs if c["method"] == "ce"]
    gloss = [c for c in configs if c["method"] == "gloss"]
    assert [c["seed"] for c in ce] == [0, 1] and all(c["tags"] == {"unsearched": True} for c in ce)
    assert all(c["lr"] is None for c in ce), "at the base configuration"
    assert [c["seed"] for c in gloss] == [0, 1] and all(c["tags"] == {} and c["lr"] == 3e-3 for c in gloss)


@dataclass
class FakeResult:
    """What best_configs reads of a Tune result."""

    status: str
    score: float
    row: str = "gloss"
    error: Exception | None = None
    config: dict = field(init=False)
    metrics: dict = field(init=False)

    def __post_init__(self):
        self.config = {"dataset": "r8", "loss": "gloss", "method": self.row, "tag": (self.status, self.score)}
        self.metrics = {"best_score": self.score, "status": self.status}


def test_a_diverged_trial_never_wins_a_search():
    results = [
        FakeResult("diverged", 0.99),
        FakeResult("completed", 0.50),
        FakeResult("early_stopped", 0.60),
        FakeResult("running", 0.95),  # stopped by the scheduler
        FakeResult("completed", 0.97, error=RuntimeError("lost")),
        FakeResult("completed", math.nan),
        FakeResult("diverged", 0.90, row="other"),
    ]
    best = best_configs(results)
    assert best[("r8", "gloss")]["tag"] == ("early_stopped", 0.60)
    assert ("r8", "other") not in best, "a row whose trials all diverged has no winner"


@pytest.fixture(scope="module")
def paper_plan(data_dir) -> list[dict]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "paper", "--dry-run", "--json", "--data-dir", str(data_dir)]) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "cost" in lines[-1], "the last line is the bill"
    return lines[:-1]


def paper_rows() -> dict[str, str]:
    """The paper's rows and their mode, read from the authors' figures."""
    with PAPER_CSV.open() as handle:
        return {row["loss"]: row["mode"] for row in csv.DictReader(handle)}


def test_the_paper_preset_is_the_papers_experiment(paper_plan):
    assert {line["phase"] for line in paper_plan} == {"search", "final"}
    datasets = {"mr", "r8", "r52", "ohsumed", "20ng"}
    for phase in ("search", "final"):
        lines = [line for line in paper_plan if line["phase"] == phase]
        assert {(line["dataset"], line["loss"]) for line in lines} == {
            (d, row) for d in datasets for row in paper_rows()
        }
    for line in paper_plan:
        config, mode = line["config"], paper_rows()[line["loss"]]
        assert config["model"] == "bert-base" and config["fidelity"] == "full"
        assert (config["batch_sampler"], config["batch_size"], config["max_length"]) == ("random", 128, 128)
        assert (config["optimizer"], config["schedule"], config["step_epoch"]) == ("adam", "step", 30)
        assert (config["epochs"], config["patience"], config["monitor"]) == (200, 10, "auto")
        assert (config["class_weighting"], config["val_fraction"]) == ("balanced", 0.1)
        assert line["space"]["lr"]["choices"] == [1e-5, 2e-5, 3e-5, 4e-5, 5e-5]
        lam = config["loss_params"].get("lam", 0.0)
        if mode == "standalone":
            assert lam == 1.0 and "lam" not in line["space"], line["loss"]
        else:
            assert lam < 1.0 and line["space"].get("lam", {}).get("high", 0.0) < 1.0, line["loss"]
        if line["phase"] == "search":
            assert (line["seeds"], line["budget"]) == ([3], 20)
        else:
            assert (line["seeds"], line["trials"]) == ([0, 1, 2], 3)


def test_a_search_spends_its_budget_on_distinct_configurations(paper_plan):
    """The lr is a choice of 5: a search over it alone trains each once; SupCon's 5 x 4 points
    fill the budget of 20 exactly; G-Loss's larger spaces are sampled over the whole budget."""
    expected = {"ce": 5, "triplet": 5, "cos_sim": 5, "scl+ce": 20, "scl": 20}
    for line in (line for line in paper_plan if line["phase"] == "search"):
        if line["loss"] in expected:
            assert (line["trials"], line["search"]) == (expected[line["loss"]], "exhaustive"), line["loss"]
        else:
            assert (line["trials"], line["search"]) == (20, "sampled"), line["loss"]


def test_the_fairness_note_says_how_each_budget_is_spent(data_dir, capsys):
    assert main(["run", "paper", "--dry-run", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert (
        "budget spent (20 search trials per row): exhaustive, every configuration once, for ce 5, "
        "scl+ce 20, triplet 5, cos_sim 5, scl 20 trials; sampled by tpe for gloss_o+ce, gloss_sqrt+ce, "
        "gloss_o (20 trials each" in out
    )
    assert "search: 575 trials" in out
    assert "mr ce             5 trials over lr: every configuration once (budget 20)" in out


def test_g_loss_is_exactly_as_published(paper_plan):
    search = {
        line["loss"]: line for line in paper_plan if line["phase"] == "search" and line["dataset"] == "r8"
    }
    for row in ("gloss_o+ce", "gloss_sqrt+ce", "gloss_o"):
        params = search[row]["config"]["loss_params"]
        assert search[row]["loss_function"] == "gloss"
        assert (params["variant"], params["k"], params["propagation"]) == ("reference", None, "harmonic")
        assert {"k", "propagation", "alpha"}.isdisjoint(search[row]["space"])
        assert search[row]["space"]["gamma"] | {"when": {}} == {
            "type": "float", "low": 0.5, "high": 0.9, "log": False, "choices": None, "step": 0.1, "when": {}
        }  # fmt: skip
    for row in ("gloss_o+ce", "gloss_o"):
        sigma = search[row]["space"]["sigma"]
        assert (sigma["type"], sigma["low"], sigma["high"], sigma["log"]) == ("float", 0.1, 10.0, False)
    assert search["gloss_sqrt+ce"]["config"]["loss_params"]["sigma"] == "sqrt"
    assert "sigma" not in search["gloss_sqrt+ce"]["space"]
    for row in ("gloss_o+ce", "gloss_sqrt+ce"):
        lam = search[row]["space"]["lam"]
        assert (lam["low"], lam["high"], lam["step"]) == (0.5, 0.9, 0.1)
    for row in ("triplet", "cos_sim", "scl", "gloss_o"):
        assert search[row]["config"]["loss_params"]["lam"] == 1.0 and "lam" not in search[row]["space"]
    assert search["scl+ce"]["config"]["loss_params"]["lam"] == 0.9
    for row in ("scl+ce", "scl"):
        assert search[row]["space"]["temperature"]["choices"] == [0.1, 0.3, 0.5, 0.7]
    assert search["triplet"]["config"]["loss_params"]["margin"] == 5.0
    functions = {row: line["loss_function"] for row, line in search.items()}
    assert functions == {
        "ce": "ce", "scl+ce": "supcon", "gloss_o+ce": "gloss", "gloss_sqrt+ce": "gloss",
        "triplet": "triplet", "cos_sim": "cosine_mse", "scl": "supcon", "gloss_o": "gloss",
    }  # fmt: skip


class LabelsOnly:
    """The part of a split the batch order reads."""

    labels = np.repeat(np.arange(4), 8)

    def lengths(self):
        return np.full(len(self.labels), 16)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_the_training_loop_never_picks_a_sampler_by_loss(loss):
    config = TrialConfig(dataset="r8", loss=loss, batch_size=8)
    assert isinstance(batch_order(config, LabelsOnly()), RandomBatches)
    config = dataclasses.replace(config, batch_sampler="class_aware")
    assert isinstance(batch_order(config, LabelsOnly()), ClassAwareBatches)


class VariedLengths(LabelsOnly):
    """A split whose examples all differ in length."""

    def lengths(self):
        return np.random.default_rng(0).permutation(len(self.labels)) + 1


@pytest.mark.parametrize("fidelity", ["full", "frozen"])
@pytest.mark.parametrize("sampler", ["random", "class_aware"])
@pytest.mark.parametrize("grouped", [True, False])
def test_the_dry_runs_sampler_is_the_one_trials_draw(fidelity, sampler, grouped):
    """The dry run says "grouped by length" exactly when batch_order sorts batches by length."""
    config = TrialConfig(
        dataset="r8", fidelity=fidelity, batch_sampler=sampler, group_by_length=grouped, batch_size=8
    )
    batches = batch_order(config, VariedLengths())
    sorts = isinstance(batches, RandomBatches) and batches.lengths is not None
    assert ("grouped by length" in sampler_text(config)) == sorts
    assert sorts == (fidelity == "full" and sampler == "random" and grouped)


def test_grouped_batches_sort_a_whole_split_that_fits_one_window():
    """Within one window (GROUP_WINDOW batches) the split is sorted by length as a whole: no two
    batches overlap in length, so each batch is a slice of the length order, not a random draw;
    ungrouped batches (the control) overlap."""
    split = VariedLengths()
    assert len(split.labels) <= 8 * GROUP_WINDOW
    lengths = split.lengths()
    for grouped, disjoint in ((True, True), (False, False)):
        batches = RandomBatches(split.labels, 8, 0, lengths if grouped else None).epoch(1)
        spans = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
        overlap = any(low <= previous for (_, previous), (low, _) in itertools.pairwise(spans))
        assert overlap != disjoint


def preset_conditions(name: str) -> list[str]:
    preset = spec_from_mapping(parse_yaml(preset_text(name), name), name)
    return shared_conditions(preset, phases(preset)[-1].groups)


def test_the_paper_presets_dry_run_says_its_batches_are_grouped_by_length():
    paper, frozen = preset_conditions("paper"), preset_conditions("paper-frozen")
    window = f"within windows of {GROUP_WINDOW} batches ({128 * GROUP_WINDOW} examples"
    assert paper[0].startswith("conditions shared by every row: batch_sampler random, grouped by length")
    assert window in paper[0]
    assert paper[-1].startswith("note: batches are random, grouped by length, for every row")
    assert frozen[0].startswith("conditions shared by every row: batch_sampler random; lr")
    assert frozen[-1].startswith("note: batches are random for every row")
