"""Bad input is refused before any trial starts: exit status 2 and one sentence naming the field,
file or line and the fix, never a traceback. Spec parsing never fails any other way."""

import gzip
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from common.errors import ConfigError
from study.cli import main
from study.spec import StudySpec, spec_from_mapping
from trainables.config import TrialConfig


def refused(args: list[str], capsys) -> str:
    """Run gloss; it must exit 2 with exactly one line on stderr, which is returned."""
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gloss: error: ") and "Traceback" not in captured.err
    return lines[0]


def write_dataset(folder, train_rows, test_rows):
    folder.mkdir(parents=True)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        with gzip.open(folder / f"{name}.jsonl.gz", "wt") as handle:
            handle.writelines(row if isinstance(row, str) else json.dumps(row) + "\n" for row in rows)


GOOD = [{"text": f"document {i}", "label": "ab"[i % 2]} for i in range(20)]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: x\nkind: grid: oops\n", "spec.yaml:2:11: mapping values are not allowed here"),
        ("name: x\nkind: grid\ndatasets: [r8]\nlosses: [ce]\nepochs: 3\n", "epochs: unknown key"),
        (
            "name: x\nkind: grid\ndatasets: [r8]\nlosses: [ce]\ntraining: {batch_size: 1}\n",
            "training.batch_size",
        ),
        ("- a list\n", "a study spec is a mapping"),
    ],
)
def test_spec_file_mistakes(yaml_text, message, tmp_path, data_dir, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml_text)
    assert message in refused(["run", str(spec), "--dry-run", "--data-dir", str(data_dir)], capsys)


def test_unknown_preset_model_and_address(data_dir, tmp_path, capsys):
    assert "did you mean 'smoke'" in refused(["run", "smok", "--dry-run"], capsys)
    storage = ["--storage", str(tmp_path), "--data-dir", str(data_dir)]
    assert "did you mean 'minilm'" in refused(["run", "smoke", "--set", "model=minilmm", *storage], capsys)
    dry = ["--dry-run", "--data-dir", str(data_dir)]
    assert "cannot load 'no-such/model'" in refused(
        ["run", "smoke", "--set", "model=no-such/model", *dry], capsys
    )
    assert "unknown dataset 'r9'" in refused(["run", "smoke", "--set", "datasets=[r9]", *dry], capsys)
    only_r8 = tmp_path / "only-r8"
    only_r8.mkdir()
    (only_r8 / "r8").symlink_to(data_dir / "r8")
    absent = ["run", "smoke", "--set", "datasets=[mr]", "--dry-run", "--data-dir", str(only_r8)]
    assert "mr" in (message := refused(absent, capsys)) and "gloss data download" in message
    message = refused(["run", "smoke", "--address", "127.0.0.1:1", *storage], capsys)
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in message and "drop --address" in message


def test_unwritable_storage(tmp_path, data_dir, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = refused(
        ["run", "smoke", "--storage", str(blocker / "results"), "--data-dir", str(data_dir)], capsys
    )
    assert message.startswith("gloss: error: storage: cannot write to") and "--storage" in message


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ([*GOOD[:3], '{"text": "cut off", "lab\n', *GOOD[3:]], GOOD, "train.jsonl.gz:4: not valid JSON"),
        ([], GOOD, "train.jsonl.gz: holds no examples"),
        (GOOD, [{"text": "x", "label": "c"}], "test label 'c' never occurs in training"),
        (GOOD, [{"text": "", "label": "a"}], "test.jsonl.gz:1: 'text' must be a non-empty string"),
    ],
)
def test_bad_data_files(train, test, message, tmp_path, capsys):
    write_dataset(tmp_path / "data" / "mine", train, test)
    args = ["run", "smoke", "--dry-run", "--set", "datasets=[mine]", "--data-dir", str(tmp_path / "data")]
    assert message in refused(args, capsys)


def test_class_too_small_for_the_subset(data_dir, capsys):
    args = [
        "run",
        "smoke",
        "--dry-run",
        "--data-dir",
        str(data_dir),
        "--set",
        "datasets=[r52]",
        "--set",
        "training.train_size=40",
    ]
    assert "train_size: 40 cannot hold one example of each of the 52 classes" in refused(args, capsys)


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SPEC_KEYS = st.sampled_from([*StudySpec.model_fields, "trainng", "loss"])
TRIAL_KEYS = st.sampled_from([*TrialConfig.__dataclass_fields__, "epoch", "sigma"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(SPEC_KEYS, VALUES, max_size=8))
@example({"name": "\r"})  # found by Hypothesis: a line break in a value the message quotes
def test_any_spec_mapping_parses_or_names_its_fault(data):
    try:
        spec = spec_from_mapping(data, "spec.yaml")
    except ConfigError as error:
        lines = str(error).splitlines()
        assert lines and all(line.startswith("spec.yaml: ") and line != "spec.yaml: " for line in lines)
    else:
        assert isinstance(spec, StudySpec)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TRIAL_KEYS, VALUES, max_size=8), st.sampled_from(["ce", "gloss", "supcon", "x"]))
def test_any_trial_mapping_parses_or_names_its_fault(data, loss):
    try:
        TrialConfig.from_dict({"dataset": "r8", **data, "loss": loss})
    except ConfigError as error:
        assert len(str(error).splitlines()) == 1
