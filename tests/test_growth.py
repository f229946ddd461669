"""Growing a study with the real CLI: `gloss run SPEC --resume` after seeds, datasets or rows were
added runs only the new trials (finished ones byte-identical, one folder per trial), records the
growth in study.json beside the spec the study started with, and `gloss status` shows it; any
other change (an edited learning rate) is refused before any compute, naming the key."""

import json
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
import yaml

from analysis import final_results, load_runs
from common.errors import ConfigError
from study.cli import main
from tests.processes import finished_trials, start_gloss, wait_for
from tests.s3_server import s3_server

TRAINING = {"train_size": 64, "eval_size": 40, "max_length": 32, "batch_size": 16, "epochs": 2, "lr": 0.001}
GRID = {
    "name": "growing",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce"],
    "seeds": [0],
    "training": TRAINING,
}


def run(spec: dict, folder: Path, storage: str, data_dir: Path, log: str, *extra: str, env=None) -> int:
    path = folder / f"{log}.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = ["run", str(path), "--storage", storage, "--data-dir", str(data_dir), "--no-report", *extra]
    return start_gloss(args, folder / f"{log}.log", env=env).wait(timeout=600)


def gloss_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("gloss:")]


def records(study: Path) -> dict[str, str]:
    """Each trial's result.json text, by its path relative to the study."""
    return {str(path.relative_to(study)): path.read_text() for path in sorted(study.glob("*/*/result.json"))}


@pytest.mark.studies  # four runs of a study through the CLI: `make test-cluster` runs it
def test_an_added_seed_runs_only_its_trials_and_an_edited_lr_is_refused(tmp_path, data_dir, capsys):
    study = tmp_path / "growing"
    assert run(GRID, tmp_path, str(tmp_path), data_dir, "first") == 0
    first, provenance = records(study), (study / "study.json").read_bytes()
    assert list(first) == [f"grid/{Path(next(iter(first))).parent.name}/result.json"]

    edited = {**GRID, "training": {**TRAINING, "lr": 0.002}}
    assert run(edited, tmp_path, str(tmp_path), data_dir, "edited", "--resume") == 2
    errors = gloss_lines(tmp_path / "edited.log")
    assert len(errors) == 1 and "training.lr 0.001 -> 0.002" in errors[0], errors
    assert "name: growing-2" in errors[0]
    assert (study / "study.json").read_bytes() == provenance and records(study) == first, "nothing ran"

    grown = {**GRID, "seeds": [0, 1]}
    assert run(grown, tmp_path, str(tmp_path), data_dir, "grown", "--resume") == 0
    assert "gloss: the study grows by seeds 1" in (tmp_path / "grown.log").read_text()
    after = records(study)
    assert {k: v for k, v in after.items() if k in first} == first, "the finished trial was not rerun"
    added = [k for k in after if k not in first]
    assert len(added) == 1 and added[0].startswith("grid+1/r8-ce-s1-")
    final = final_results(load_runs(study))
    assert sorted(final["seed"]) == [0, 1] and set(final["phase"]) == {"grid"}

    recorded = json.loads((study / "study.json").read_text())
    assert recorded["spec"]["seeds"] == [0], "study.json keeps the spec the study started with"
    assert [g["added"] for g in recorded["growth"]] == [{"seeds": [1]}]
    assert recorded["phases"] == [{"name": "grid", "trials": 2}]
    assert main(["status", str(study)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^grown \S+: seeds \[1\] \(gloss run .* --resume\)$", out, re.MULTILINE), out
    assert "grid: 2/2 done" in out

    assert run(grown, tmp_path, str(tmp_path), data_dir, "again", "--resume") == 0
    assert records(study) == after, "resuming the grown study reruns nothing"


def test_a_study_is_not_overwritten_without_resume(tmp_path, data_dir):
    study = tmp_path / "growing"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"spec": GRID, "growth": [], "phases": []}))
    assert run(GRID, tmp_path, str(tmp_path), data_dir, "again") == 2
    errors = gloss_lines(tmp_path / "again.log")
    assert len(errors) == 1 and "already exists" in errors[0] and "--resume" in errors[0]


PROTOCOL = {
    **GRID,
    "name": "growing-protocol",
    "kind": "protocol",
    "seeds": [0],
    "search": {"trials": 2, "max_concurrent": 1},
}


@pytest.mark.faults
def test_a_protocol_grows_by_a_row_and_a_seed_on_object_storage(tmp_path, data_dir):
    """On a bucket: the new row gets its own search (search+1) on the search seed the study
    started with (max of its seeds + 1 = 1), the final phase its new trials (final+1: the new row
    on every seed, the old row on the new seed at its searched config); nothing runs twice."""
    with s3_server(tmp_path / "s3.log") as server:
        storage = server.uri("studies")
        assert run(PROTOCOL, tmp_path, storage, data_dir, "first", env=server.env) == 0
        grown = {**PROTOCOL, "losses": ["ce", "gloss"], "seeds": [0, 2]}
        assert run(grown, tmp_path, storage, data_dir, "grown", "--resume", env=server.env) == 0
        keys = server.keys("studies/growing-protocol/")
    parts = [key.split("/") for key in keys if key.endswith("/result.json")]
    trials = Counter(f"{experiment}/{trial.rsplit('-', 1)[0]}" for _, _, experiment, trial, _ in parts)
    assert trials == {
        "search/r8-ce-s1": 1,  # lr fixed: CE's space holds one configuration, trained once
        "search+1/r8-gloss-s1": 2,
        "final/r8-ce-s0": 1,
        "final+1/r8-ce-s2": 1,
        "final+1/r8-gloss-s0": 1,
        "final+1/r8-gloss-s2": 1,
    }, keys


@pytest.mark.faults
def test_a_driver_killed_while_the_study_grows_resumes_without_rerunning(tmp_path, data_dir):
    study = tmp_path / "growing"
    assert run(GRID, tmp_path, str(tmp_path), data_dir, "first") == 0
    first = records(study)
    grown = {**GRID, "seeds": [0, 1, 2, 3]}
    path = tmp_path / "grown.yaml"
    path.write_text(yaml.safe_dump(grown))
    args = ["run", str(path), "--storage", str(tmp_path), "--data-dir", str(data_dir), "--no-report"]
    driver = start_gloss([*args, "--resume", "--max-concurrent", "1"], tmp_path / "killed.log")
    wait_for(lambda: len(finished_trials(study / "grid+1")) >= 1, 300, "a first new trial finished")
    before = finished_trials(study / "grid+1")
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    assert start_gloss([*args, "--resume"], tmp_path / "resumed.log").wait(timeout=600) == 0
    after = records(study)
    assert {k: v for k, v in after.items() if k in first} == first
    for trial, text in before.items():
        assert (trial / "result.json").read_text() == text, f"{trial.name} was rerun"
    assert len(list((study / "grid+1").glob("*/result.json"))) == 3, "one folder per new trial"
    recorded = json.loads((study / "study.json").read_text())
    assert [g["added"] for g in recorded["growth"]] == [{"seeds": [1, 2, 3]}], "one growth, recorded once"


def started_record(spec_data: dict) -> dict:
    """study.json's part `grown` reads: the spec as the study recorded it when it started."""
    from study.growth import plain
    from study.spec import spec_from_mapping

    return {"spec": plain(spec_from_mapping(spec_data, "t.yaml"))}


def test_operational_settings_and_settings_added_since_are_no_change():
    """How a study runs (checkpoint policy, concurrency) may change between runs, and a setting a
    later version added, recorded by an earlier one as absent, reads as its default; what it
    measures may not (the control: the learning rate)."""
    from study.growth import grown
    from study.spec import spec_from_mapping

    record = started_record(GRID)
    del record["spec"]["search"]["grace_period"]  # as if recorded before the setting existed
    operational = {**GRID, "checkpoint": {"every_epochs": None, "every_minutes": 5}, "max_concurrent": 1}
    operational["search"] = {"max_concurrent": 1}
    spec, stage = grown(record, spec_from_mapping(operational, "t.yaml"))
    assert stage is None and spec.checkpoint.every_minutes == 5
    edited = {**GRID, "training": {**TRAINING, "lr": 0.002}}
    with pytest.raises(ConfigError, match=r"training\.lr 0\.001 -> 0\.002"):
        grown(record, spec_from_mapping(edited, "t.yaml"))
