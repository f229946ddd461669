"""A spec's mistakes are refused together, each on its own line at the YAML path a user edits,
through the real CLI and before any compute."""

import pytest

from common.errors import ConfigError
from study.cli import main
from study.spec import spec_from_mapping

BASE = {"name": "t", "kind": "grid", "datasets": ["r8"]}

THREE_MISTAKES = """\
name: bad
kind: protocol
datasets: [r8]
losses: [ce, gloss]
training: {epoch: 3}
loss_params: {glos: {k: 8}}
search: {trials: many}
"""


def test_three_mistakes_are_refused_once_naming_all_three(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(THREE_MISTAKES)
    assert main(["run", str(spec), "--dry-run", "--storage", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    lines = [line.removeprefix("gloss: error: ") for line in err.splitlines()]
    assert lines == [
        f"{spec}: training.epoch: unknown key (did you mean 'epochs'?); allowed keys are "
        + lines[0].split("allowed keys are ")[1],
        f"{spec}: loss_params.glos: unknown key (did you mean 'gloss'?); allowed keys are ce, contrastive, "
        "cosine_mse, gloss, none, supcon, triplet.",
        f"{spec}: search.trials: expected an integer, got 'many'.",
    ]
    assert "Traceback" not in err and not (tmp_path / "results").exists()


def refusal(**changes) -> str:
    with pytest.raises(ConfigError) as caught:
        spec_from_mapping({**BASE, **changes}, "t.yaml")
    return str(caught.value)


def test_only_user_facing_keys_are_listed_as_allowed():
    message = refusal(training={"epoch": 3})
    allowed = set(message.split("allowed keys are ")[1].rstrip(".").split(", "))
    assert {"epochs", "lr", "batch_size", "data_dir"} <= allowed
    assert not allowed & {"dataset", "phase", "study", "seed", "loss", "loss_params", "tags", "model"}


def test_a_moved_key_says_where_it_belongs():
    assert refusal(training={"seed": 3, "model": "minilm"}).splitlines() == [
        "t.yaml: training.seed: list seeds at the top of the spec, e.g. seeds: [0, 1, 2].",
        "t.yaml: training.model: set it once at the top of the spec (model: ...), for every row.",
    ]


def test_a_union_error_is_one_line_at_the_key():
    assert refusal(loss_params={"gloss": {"sigma": "wide"}}) == (
        "t.yaml: loss_params.gloss.sigma: 'wide' is not valid; expected a number or one of 'sqrt', 'dicm'."
    )
