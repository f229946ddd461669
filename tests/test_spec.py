"""Study specs: validation with key paths and suggestions, overrides, presets, and plans."""

import json
from pathlib import Path

import pytest

from common.errors import ConfigError
from study.growth import Stage, grown, plain
from study.plan import phases
from study.presets import preset_names, preset_text
from study.spec import apply_overrides, load_spec_file, parse_yaml, spec_from_mapping
from study.study_plan import plan_study, replanned

BASE = {"name": "t", "kind": "grid", "datasets": ["r8"], "losses": ["ce", "gloss"], "seeds": [0, 1]}


def spec(**changes):
    return spec_from_mapping({**BASE, **changes}, "t.yaml")


def plan_error(**changes) -> str:
    with pytest.raises(ConfigError) as caught:
        phases(spec(**changes))
    return str(caught.value)


def test_grid_is_every_dataset_loss_and_seed():
    (grid,) = phases(spec(datasets=["r8", "mr"]))
    assert grid.trials == 2 * 2 * 2
    configs = grid.searcher().configs
    assert {(c["dataset"], c["loss"], c["seed"]) for c in configs} == {
        (d, loss, s) for d in ("r8", "mr") for loss in ("ce", "gloss") for s in (0, 1)
    }
    assert configs[1]["loss_params"] == {}, "ce has no parameters"
    assert configs[-1]["loss_params"]["sigma"] == 0.5, "recorded configs are complete"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kindd": "grid"}, "t.yaml: kindd: unknown key (did you mean 'kind'?)"),
        (
            {"kind": "gird"},
            "t.yaml: kind: 'gird' is not allowed; choose one of 'grid', 'search', 'protocol', "
            "'ablation' (did you mean 'grid'?)",
        ),
        ({"seeds": [0, -1]}, "t.yaml: seeds: [0, -1] holds a negative seed"),
        ({"seeds": "zero"}, "t.yaml: seeds: expected a list, got 'zero'."),
        ({"datasets": []}, "t.yaml: datasets: the list is empty"),
        ({"resources": {"gpus": 1}}, "t.yaml: resources.gpus: unknown key (did you mean 'gpu'?)"),
        ({"search": {"trials": 0}}, "t.yaml: search.trials: 0 must be at least 1."),
    ],
)
def test_bad_specs_name_the_key_and_the_fix(changes, expected):
    with pytest.raises(ConfigError) as caught:
        spec(**changes)
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"loss_params": {"gloss": {"sigma": 0}}},
            "loss_params.gloss.sigma (r8, gloss): 0.0 must be positive",
        ),
        (
            {"loss_params": {"gloss": {"gamma": 1.5}}},
            "loss_params.gloss.gamma (r8, gloss): 1.5 is outside (0, 1)",
        ),
        ({"loss_params": {"gloss": {"k": 0}}}, "loss_params.gloss.k (r8, gloss): 0 must be at least 1"),
        (
            {"loss_params": {"gloss": {"k": 32}}},
            "loss_params.gloss.k (r8, gloss): 32 is not below the batch size 32",
        ),
        ({"loss_params": {"gloss": {"lam": 2}}}, "loss_params.gloss.lam (r8, gloss): 2.0 is outside [0, 1]"),
        (
            {"loss_params": {"gloss": {"alpha": 1}}},
            "loss_params.gloss.alpha (r8, gloss): 1.0 is outside (0, 1)",
        ),
        ({"training": {"batch_size": 1}}, "training.batch_size (r8, ce): 1 is below the minimum 2"),
        ({"training": {"epochs": 0}}, "training.epochs (r8, ce): 0 is below the minimum 1"),
        ({"training": {"lr": "fast"}}, "t.yaml: training.lr: expected a number, got 'fast'."),
        ({"training": {"epoch": 3}}, "t.yaml: training.epoch: unknown key (did you mean 'epochs'?)"),
        ({"losses": ["ce", "glos"]}, "t.yaml: losses.1: unknown loss 'glos' (did you mean 'gloss'?)"),
    ],
)
def test_impossible_values_are_refused_before_any_trial(changes, expected):
    assert plan_error(**changes).startswith(expected)


def test_search_space_bounds_are_checked_against_the_loss():
    message = plan_error(kind="search", search={"space": {"gloss": {"gamma": {"uniform": [0.5, 1.2]}}}})
    assert message.startswith("search.space.gloss.gamma (r8, gloss): 1.2 is outside (0, 1)")
    message = plan_error(kind="search", search={"space": {"gloss": {"sigma": {"log_uniform": [0, 1]}}}})
    assert "search.space.gloss.sigma.log_uniform: need 0 < low < high" in message


def test_k_choices_stay_below_the_batch_size():
    (search,) = phases(spec(kind="search", training={"batch_size": 16}))
    group = search.groups[1]
    assert group.config.loss == "gloss" and search.searcher().groups[1].base == group.config
    assert group.space["k"].choices == (None, 4, 8)


def test_ablation_varies_one_factor_at_a_time():
    ablation = {
        "loss": "gloss",
        "factors": {"sigma": [0.1, 1.0], "alpha": [{"propagation": "spreading", "alpha": 0.5}]},
    }
    (phase,) = phases(spec(kind="ablation", ablation=ablation))
    configs = phase.searcher().configs
    assert phase.trials == 3 * 2
    assert [c["loss_params"]["sigma"] for c in configs[:4]] == [0.1, 0.1, 1.0, 1.0]
    assert configs[-1]["loss_params"]["propagation"] == "spreading"
    assert configs[-1]["tags"] == {"factor": "alpha", "level": "{'propagation': 'spreading', 'alpha': 0.5}"}


def test_protocol_has_a_search_then_a_final_phase():
    search, final = phases(spec(kind="protocol", search={"trials": 4}))
    assert (search.trials, final.trials) == (2 * 4, 2 * 2)


def test_overrides_and_yaml_errors():
    data = apply_overrides(BASE, ["training.epochs=3", "seeds=[0, 1, 2]", "search.trials=2"])
    assert (
        data["training"] == {"epochs": 3} and data["seeds"] == [0, 1, 2] and data["search"] == {"trials": 2}
    )
    with pytest.raises(ConfigError, match="write key=value"):
        apply_overrides(BASE, ["epochs"])
    with pytest.raises(ConfigError, match=r"^spec.yaml:2:\d+: .*fix the YAML syntax there"):
        parse_yaml("name: x\nkind: grid: oops\n", "spec.yaml")


@pytest.mark.parametrize("name", preset_names())
def test_presets_are_valid_specs(name):
    preset = spec_from_mapping(parse_yaml(preset_text(name), name), name)
    assert preset.name == name and phases(preset)


def test_the_one_gpu_study_plans_the_issues_run():
    """bench/gpu_study.yaml, which BENCHMARKS item 7 runs when a GPU is lent, plans issue 14's
    study: MiniLM fine-tuned in full on R8, CE and G-Loss, 2 epochs, one GPU per trial."""
    spec = load_spec_file(Path(__file__).parents[1] / "bench" / "gpu_study.yaml")
    (grid,) = phases(spec)
    configs = [group.config for group in grid.groups]
    assert sorted((c.dataset, c.loss) for c in configs) == [("r8", "ce"), ("r8", "gloss")]
    assert {(c.model, c.fidelity, c.epochs) for c in configs} == {("minilm", "full", 2)}
    assert spec.resources.gpu == 1


def test_unknown_preset_suggests_one():
    with pytest.raises(ConfigError, match="did you mean 'demo'"):
        preset_text("demoo")


def test_paper_frozen_is_the_papers_experiment_at_frozen_fidelity():
    paper, frozen = (spec_from_mapping(parse_yaml(preset_text(n), n), n) for n in ("paper", "paper-frozen"))
    assert frozen.losses == paper.losses, "the same rows, parameters and spaces"
    # MiniLM pools by its mean, BERT by its CLS token: the one training setting that differs
    same_training = {k: v for k, v in paper.training.written().items() if k != "pooling"}
    assert frozen.training.written() == same_training
    assert (frozen.model, frozen.fidelity, paper.fidelity) == ("minilm", "frozen", "full")
    assert (frozen.search.trials, frozen.search.sampler) == (paper.search.trials, paper.search.sampler)
    head, tuned = frozen.search.lr.choice, paper.search.lr.choice
    assert head == pytest.approx([100 * lr for lr in tuned]), "the head's rates, x100 the fine-tuning ones"


def test_a_row_added_as_a_mapping_grows_the_study_as_written():
    """study.json records a grown row as the user wrote it (JSON, defaults left out), and the
    grown stage plans it."""
    started = spec(losses=["ce"])
    row = {"name": "g", "loss": "gloss", "params": {"k": 4}}
    grown_spec, stage = grown({"spec": plain(started)}, spec(losses=["ce", row]))
    assert stage.added_to(Stage((0, 1), ("r8",), ("ce",))) == {"losses": [row]}
    assert json.loads(json.dumps(stage.losses)) == ["ce", row]
    (grid,) = phases(stage.spec(grown_spec))
    assert grid.searcher().configs[-1]["loss_params"]["k"] == 4


def test_a_grown_study_plans_only_the_new_trials_of_each_stage():
    """The plan of a study grown by a seed, then by a dataset: the first stage's experiment
    holds all its trials, each growth's (`grid+1`, `grid+2`) only the trials it added; the
    plan previews the whole study."""
    record = {"spec": plain(spec(seeds=[0])), "growth": [{"added": {"seeds": [1]}}]}
    grown_spec, stage = grown(record, spec(datasets=["r8", "mr"]))
    plan = plan_study(grown_spec, record, stage)
    assert [(p.experiment, p.trials) for p in plan.first] == [("grid", 2), ("grid+1", 2), ("grid+2", 4)]
    assert [p.trials for p in plan.phases] == [8]
    added = [(c["dataset"], c["seed"]) for c in plan.first[2].searcher().configs]
    assert sorted(added) == [("mr", 0), ("mr", 0), ("mr", 1), ("mr", 1)]
    assert replanned(plan, grown_spec, record, stage) is plan
    assert replanned(plan, spec(datasets=["r8", "mr"], seeds=[0, 1, 2]), record, stage) is not plan
