"""Experiment trackers end to end, offline: a tiny study with TensorBoard, MLflow and W&B, read back
with each tool's own reader; plus the refusals and the promise that no tracker is imported unasked."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import ConfigError
from study.cli import main
from study.spec import spec_from_mapping
from study.tracking import parse_tracking_flag
from tests.test_sweep import TINY_TRAINING, write_spec

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 2
TRIALS = 4  # 2 losses x 2 seeds
SPEC = {"name": "s", "kind": "grid", "datasets": ["r8"]}


def test_spec_tracking_is_validated_with_a_suggestion():
    assert spec_from_mapping({**SPEC, "tracking": ["mlflow", "wandb"]}, "x").tracking == ("mlflow", "wandb")
    assert spec_from_mapping(SPEC, "x").tracking == ()
    with pytest.raises(ConfigError, match=r"tracking\.0: 'mlfow' is not allowed.*did you mean 'mlflow'"):
        spec_from_mapping({**SPEC, "tracking": ["mlfow"]}, "x")
    with pytest.raises(ConfigError, match="tracking: expected a list"):
        spec_from_mapping({**SPEC, "tracking": "mlflow"}, "x")
    with pytest.raises(ConfigError, match=r"tracking: .* repeats an entry"):
        spec_from_mapping({**SPEC, "tracking": ["wandb", "wandb"]}, "x")


def test_tracking_flag_is_parsed_and_checked():
    assert parse_tracking_flag("mlflow, tensorboard") == ("mlflow", "tensorboard")
    assert parse_tracking_flag("none") == () and parse_tracking_flag("") == ()
    with pytest.raises(ConfigError, match=r"--tracking wandb,tensorbord: .*did you mean 'tensorboard'"):
        parse_tracking_flag("wandb,tensorbord")


def run_dry(tmp_path, capsys, *extra: str) -> tuple[int, str]:
    spec = write_spec(tmp_path, **SPEC, model="tiny-bert", losses=["ce"], training=TINY_TRAINING)
    code = main(["run", str(spec), "--dry-run", *extra])
    return code, capsys.readouterr().err


def test_missing_tracker_package_is_refused_naming_the_extra(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    code, err = run_dry(tmp_path, capsys, "--tracking", "wandb", "--storage", str(tmp_path))
    assert code == 2 and "pip install -e '.[tracking]'" in err and len(err.strip().splitlines()) == 1


def test_mlflow_on_a_uri_storage_needs_a_tracking_uri(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow", reason="the tracking extra (mlflow) is not installed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, err = run_dry(tmp_path, capsys, "--tracking", "mlflow", "--storage", "s3://bucket/prefix")
    assert code == 2 and "set MLFLOW_TRACKING_URI" in err and len(err.strip().splitlines()) == 1


def test_wandb_without_a_key_or_offline_mode_is_refused(tmp_path, capsys, monkeypatch):
    pytest.importorskip("wandb", reason="the tracking extra (wandb) is not installed")
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc from `wandb login`
    code, err = run_dry(tmp_path, capsys, "--tracking", "wandb", "--storage", str(tmp_path))
    assert code == 2 and "WANDB_MODE=offline" in err and len(err.strip().splitlines()) == 1


def test_no_tracker_is_imported_unless_asked():
    """Building a run's callbacks without trackers imports none of their packages (nor does Ray)."""
    code = """
import sys
import ray.tune, ray.tune.logger
from study.launch import run_phase
from study.spec import spec_from_mapping
from study.tracking import check_trackers, tracker_callbacks
spec = spec_from_mapping({"name": "s", "kind": "grid", "datasets": ["r8"]}, "x")
check_trackers(spec.tracking, "/tmp/unused")
assert tracker_callbacks(spec, "grid", "/tmp/unused") == []
print([m for m in ("mlflow", "wandb", "tensorboardX", "tensorboard") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.fixture(scope="module")
def tracked_study(tmp_path_factory, data_dir, local_ray):
    """A 2-loss x 2-seed frozen grid of two epochs with all three trackers, W&B offline."""
    for module in ("mlflow", "wandb", "tensorboardX", "tensorboard"):
        pytest.importorskip(module, reason=f"the tracking extra ({module}) is not installed")
    folder = tmp_path_factory.mktemp("tracked")
    spec = write_spec(
        folder,
        name="tiny-tracked",
        kind="grid",
        model="tiny-bert",
        fidelity="frozen",
        datasets=["r8"],
        losses=["ce", "gloss"],
        seeds=[0, 1],
        training={**TINY_TRAINING, "epochs": EPOCHS},
        tracking=["mlflow"],  # --tracking below overrides it
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("WANDB_PROJECT", raising=False)
        args = ["run", str(spec), "--storage", str(folder), "--data-dir", str(data_dir), "--no-report"]
        code = main([*args, "--tracking", "tensorboard,mlflow,wandb"])
    assert code == 0
    return folder / "tiny-tracked"


def trial_folders(study: Path) -> list[Path]:
    return sorted(p.parent for p in (study / "grid").glob("*/result.json"))


def test_mlflow_has_one_run_per_trial_with_tags_params_and_every_epoch(tracked_study):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tracked_study / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny-tracked")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == TRIALS
    identities = {(r.data.tags["dataset"], r.data.tags["loss"], r.data.tags["seed"]) for r in runs}
    assert identities == {("r8", loss, seed) for loss in ("ce", "gloss") for seed in ("0", "1")}
    folders = {p.name for p in trial_folders(tracked_study)}
    assert {r.info.run_name for r in runs} == folders  # <dataset>-<loss>-s<seed>-<trial id>
    assert {r.data.tags["trial_folder"] for r in runs} == folders
    for run in runs:
        assert run.data.tags["phase"] == "grid" and run.data.tags["study"] == "tiny-tracked"
        assert run.data.params["loss"] == run.data.tags["loss"] and run.data.params["lr"] == "0.001"
        history = client.get_metric_history(run.info.run_id, "training_iteration")
        assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1))
        assert len(client.get_metric_history(run.info.run_id, "val_macro_f1")) == EPOCHS


def test_tensorboard_events_beside_each_trial_hold_every_epoch(tracked_study):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folders = trial_folders(tracked_study)
    assert len(folders) == TRIALS
    for folder in folders:
        assert list(folder.glob("events.out.tfevents.*")), folder
        events = EventAccumulator(str(folder))
        events.Reload()
        scalars = events.Scalars("ray/tune/val_macro_f1")
        assert [s.step for s in scalars] == list(range(1, EPOCHS + 1))
        records = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
        assert [s.value for s in scalars] == pytest.approx([r["val_macro_f1"] for r in records])


def wandb_records(path: Path) -> list:
    """The protobuf records of a W&B transaction log (.wandb): after a 7-byte header (':W&B', a
    version), LevelDB-log blocks of 32 KiB, each chunk a 7-byte header (CRC, length, type:
    1 full, 2 first, 3 middle, 4 last) then data; a record's chunks joined form one `Record`."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block, records, pending = path.read_bytes(), 32768, [], b""
    assert data[:4] == b":W&B", path
    offset = 7
    while offset + 7 <= len(data):
        room = block - offset % block
        if room < 7:  # a block's tail too short for a header is padding
            offset += room
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        if kind == 0:
            offset += room
            continue
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):
            records.append(Record.FromString(pending))
            pending = b""
    return records


def test_wandb_writes_one_offline_run_per_trial_with_every_epoch(tracked_study):
    folders = trial_folders(tracked_study)
    for folder in folders:
        runs = list((folder / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, folder
        (log,) = runs[0].glob("run-*.wandb")
        records = wandb_records(log)
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        assert run.display_name == folder.name and run.project == "tiny-tracked" and run.run_group == "grid"
        config = {item.key: json.loads(item.value_json) for item in run.config.update}
        assert (config["loss"], config["seed"], config["phase"]) == (
            folder.name.split("-")[1],
            int(folder.name.split("-")[2][1:]),
            "grid",
        )
        history = [
            {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for r in records
            if r.WhichOneof("record_type") == "history"
        ]
        assert [h["training_iteration"] for h in history] == list(range(1, EPOCHS + 1))
        assert all("val_macro_f1" in h for h in history)


def test_wandb_finish_in_rays_logging_actor_waits_for_wandb_core(tmp_path, monkeypatch):
    """The hook Ray calls with each run in its W&B logging actor: `wandb.finish` (what the actor
    calls before Ray kills it) then also waits for wandb-core (`wandb.teardown`), so the run's
    files are whole when the actor ends. The race itself (a few ms on a loaded machine) is not
    forced here; the read-back test above sees its effect."""
    wandb = pytest.importorskip("wandb", reason="the tracking extra (wandb) is not installed")
    from study.ray_session import WANDB_HOOK
    from study.tracking import finish_waits_for_wandb

    assert os.environ.get(WANDB_HOOK[0]) == WANDB_HOOK[1], "set for Ray's workers before Ray starts"
    run = wandb.init(project="hook", dir=str(tmp_path), name="hooked", mode="offline")
    events, finish, teardown = [], run.finish, wandb.teardown

    def recorded_finish(*args, **kwargs):
        events.append("finish")
        finish(*args, **kwargs)

    run.finish = recorded_finish
    finish_waits_for_wandb(run)
    monkeypatch.setattr(wandb, "teardown", lambda *args, **kwargs: events.append("teardown"))
    run.log({"val_macro_f1": 0.5}, step=1)
    wandb.finish()
    teardown()
    assert events == ["finish", "teardown"], "wandb-core is waited for, after the run finished"
