"""`gloss schema`: the spec's JSON Schema, which every shipped preset satisfies and which refuses a
misspelt key, checked by an independent validator (jsonschema) in the dialect pydantic writes
(2020-12) and in the one yaml-language-server applies (draft 7)."""

import json

import jsonschema
import pytest

from study.cli import main
from study.presets import preset_names, preset_text
from study.spec import parse_yaml


def printed_schema(capsys) -> dict:
    assert main(["schema"]) == 0
    return json.loads(capsys.readouterr().out)


DIALECTS = [jsonschema.Draft202012Validator, jsonschema.Draft7Validator]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_preset_satisfies_the_printed_schema(capsys, dialect):
    schema = printed_schema(capsys)
    dialect.check_schema(schema)
    validator = dialect(schema)
    for name in preset_names():
        errors = [error.message for error in validator.iter_errors(parse_yaml(preset_text(name), name))]
        assert errors == [], name


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda spec: spec["training"].update(epoch=3), "epoch"),
        (lambda spec: spec.update(loss_params={"glos": {"k": 8}}), "glos"),
        (lambda spec: spec["search"].update(trails=4), "trails"),
    ],
)
def test_a_misspelt_key_fails_the_schema(capsys, dialect, change, key):
    """The control: the same preset with one key misspelt is refused, naming the key."""
    validator = dialect(printed_schema(capsys))
    spec = parse_yaml(preset_text("demo"), "demo")
    assert not list(validator.iter_errors(spec))
    change(spec)
    messages = [error.message for error in validator.iter_errors(spec)]
    assert messages and any(key in message for message in messages)
