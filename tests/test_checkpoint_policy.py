"""The checkpoint policy: spec validation, the cadence a trial follows, and deleting finished
trials' trainer states through the storage's own filesystem (local folders, and S3 through a
moto server on 127.0.0.1), end to end with `gloss run --storage s3://...`."""

import json
from pathlib import Path

import pytest
import yaml
from pyarrow import fs as pafs

from common.errors import ConfigError
from study.checkpoints import delete_trial_states
from study.spec import spec_from_mapping
from tests.processes import start_gloss
from trainables.checkpoint import EMBEDDINGS_FILE, RECORD_FILE, STATE_FILE, Cadence
from trainables.config import TrialConfig

BASE = {"name": "t", "kind": "grid", "datasets": ["r8"]}
BUCKET = "gloss-test"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"checkpoint": {"every_epochs": 0}},
            "t.yaml: checkpoint.every_epochs: 0 must be at least 1, or null.",
        ),
        ({"checkpoint": {"every_minutes": -5}}, "t.yaml: checkpoint.every_minutes: -5.0 must be positive"),
        (
            {"checkpoint": {"max_share": None}},
            "t.yaml: checkpoint: every_epochs, every_minutes and max_share are all null",
        ),
        (
            {"checkpoint": {"max_share": 5}},
            "t.yaml: checkpoint.max_share: 5.0 must be in (0, 1), e.g. 0.05, or null.",
        ),
        ({"checkpoint": {"keep": 0}}, "t.yaml: checkpoint.keep: 0 must be at least 1."),
        ({"checkpoint": {"keeep": 2}}, "t.yaml: checkpoint.keeep: unknown key (did you mean 'keep'?)"),
        ({"checkpoint": {"delete_finished": "yes"}}, "t.yaml: checkpoint.delete_finished: expected true or"),
        (
            {"training": {"checkpoint_every_epochs": 3}},
            "t.yaml: training.checkpoint_every_epochs: set it through the checkpoint section",
        ),
        ({"max_concurrent": 0}, "t.yaml: max_concurrent: 0 must be at least 1, or null."),
    ],
)
def test_bad_policies_name_the_key_on_one_line(changes, expected):
    with pytest.raises(ConfigError) as caught:
        spec_from_mapping({**BASE, **changes}, "t.yaml")
    assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)


def test_policy_reaches_trials_as_typed_settings():
    spec = spec_from_mapping({**BASE, "checkpoint": {"every_epochs": 4, "every_minutes": 30}}, "t.yaml")
    trial = TrialConfig.from_dict({"dataset": "r8", **spec.checkpoint.trial_settings()})
    assert (trial.checkpoint_every_epochs, trial.checkpoint_every_minutes) == (4, 30.0)
    assert trial.checkpoint_final_state is False, "delete_finished (the default) skips the last state"
    default = spec_from_mapping(BASE, "t.yaml")
    policy = default.checkpoint
    assert (policy.keep, policy.every_epochs, default.max_concurrent) == (2, None, None)
    assert default.checkpoint.max_share == 0.05 and default.checkpoint.optimizer is True


def test_cadence_by_epochs_and_by_minutes():
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731 - a simulated clock
    every_third = Cadence(3, None, clock=clock)
    assert [epoch for epoch in range(1, 10) if every_third.due(epoch)] == [3, 6, 9]
    timed = Cadence(None, 10, clock=clock)
    due = []
    for epoch in range(1, 8):
        now[0] += 4 * 60  # four-minute epochs: a checkpoint once ten minutes have passed
        if timed.due(epoch):
            due.append(epoch)
            timed.saved(1.0)
    assert due == [3, 6]
    either = Cadence(5, 10, clock=clock)
    now[0] += 11 * 60
    assert either.due(1) and either.due(5)


def test_cadence_by_share_keeps_checkpoints_to_their_share_of_the_time():
    """With max_share 0.05, a checkpoint that cost 30 s is next due once 600 s have passed (a
    bert-base state on object storage: every few minutes); one that cost 10 ms is due after each
    one-second epoch. The first epoch always checkpoints (no cost known yet)."""
    now = [1000.0]
    clock = lambda: now[0]  # noqa: E731 - a simulated clock
    for cost, epoch_s, expected in [(30.0, 120.0, [1, 6, 11]), (0.01, 1.0, list(range(1, 12)))]:
        cadence, due = Cadence(None, None, 0.05, clock=clock), []
        for epoch in range(1, 12):
            now[0] += epoch_s
            if cadence.due(epoch):
                due.append(epoch)
                now[0] += cost
                cadence.saved(cost)
        assert due == expected
        spent = cost * len(due)
        assert spent <= 0.05 * (epoch_s * 11 + spent) + cost, "at most the share, bar the first"
    estimated, due = Cadence(None, None, 0.05, first_cost=30.0, clock=clock), []
    for epoch in range(1, 12):
        now[0] += 120.0
        if estimated.due(epoch):
            due.append(epoch)
            now[0] += 30.0
            estimated.saved(30.0)
    assert due == [5, 10], "with the first cost estimated, the first state too waits for its share"


def write_trial(filesystem: pafs.FileSystem, trial: str, embeddings_in_last: bool) -> None:
    """A trial folder as Ray leaves it: records, two checkpoints with a state, and a last one
    (each with its epoch's record)."""
    files = {
        f"{trial}/result.json": b"{}\n",
        f"{trial}/checkpoint_000001/{STATE_FILE}": b"x" * 1000,
        f"{trial}/checkpoint_000001/{RECORD_FILE}": b"{}",
        f"{trial}/checkpoint_000002/{STATE_FILE}": b"x" * 1000,
        f"{trial}/checkpoint_000002/{RECORD_FILE}": b"{}",
        f"{trial}/checkpoint_000003/{RECORD_FILE}": b"{}",
    }
    if embeddings_in_last:
        files[f"{trial}/checkpoint_000003/{EMBEDDINGS_FILE}"] = b"npz"
    for path, data in files.items():
        filesystem.create_dir(path.rsplit("/", 1)[0])
        with filesystem.open_output_stream(path) as handle:
            handle.write(data)


def remaining(filesystem: pafs.FileSystem, trial: str) -> set[str]:
    infos = filesystem.get_file_info(pafs.FileSelector(trial, recursive=True))
    return {info.path.removeprefix(f"{trial}/") for info in infos}


def check_deletion(filesystem: pafs.FileSystem, trial: str) -> None:
    write_trial(filesystem, trial, embeddings_in_last=True)
    assert delete_trial_states(filesystem, trial) == 2000
    assert remaining(filesystem, trial) == {
        "result.json",
        "checkpoint_000003",
        f"checkpoint_000003/{RECORD_FILE}",
        f"checkpoint_000003/{EMBEDDINGS_FILE}",
    }
    assert delete_trial_states(filesystem, trial) == 0, "deleting again changes nothing"


def test_states_are_deleted_through_a_filesystem_not_os_paths(tmp_path):
    """Paths inside a SubTreeFileSystem are not paths of this machine: only the filesystem's own
    calls can delete them."""
    (tmp_path / "root").mkdir()
    check_deletion(pafs.SubTreeFileSystem(str(tmp_path / "root"), pafs.LocalFileSystem()), "study/grid/trial")
    assert not list(tmp_path.rglob(STATE_FILE))


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with one bucket; the environment that points S3 at it."""
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials(tmp_path_factory.mktemp("aws") / "credentials")),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    filesystem = pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        endpoint_override=f"{host}:{port}",
        scheme="http",
        allow_bucket_creation=True,
    )
    filesystem.create_dir(BUCKET)
    yield env, filesystem
    server.stop()


def credentials(path: Path) -> Path:
    """moto's test keys in a credentials file: gloss refuses keys in the environment."""
    path.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    return path


def test_states_are_deleted_on_s3(s3_endpoint):
    _, filesystem = s3_endpoint
    check_deletion(filesystem, f"{BUCKET}/unit/grid/trial")


def test_a_study_on_s3_keeps_records_and_embeddings_but_no_states(s3_endpoint, tmp_path, data_dir):
    """`gloss run --storage s3://...` (its own local Ray, S3 on 127.0.0.1): each finished trial
    leaves its records and saved test embeddings in the bucket, and no trainer state."""
    env, filesystem = s3_endpoint
    spec = {
        **BASE,
        "name": "on-s3",
        "model": "tiny-bert",
        "losses": ["ce", "gloss"],
        "training": {
            "train_size": 48,
            "eval_size": 40,
            "max_length": 32,
            "epochs": 3,
            "save_embeddings": True,
        },
        "checkpoint": {"keep": 2},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = ["run", str(path), "--storage", f"s3://{BUCKET}/studies", "--data-dir", str(data_dir)]
    driver = start_gloss(args, tmp_path / "gloss.log", env=env)
    assert driver.wait(timeout=400) == 0, (tmp_path / "gloss.log").read_text()[-3000:]
    study = f"{BUCKET}/studies/on-s3/grid"
    names = [info.path.removeprefix(f"{study}/") for info in list_files(filesystem, study)]
    trials = {name.split("/")[0] for name in names if name.endswith("/result.json")}
    assert len(trials) == 2
    assert not [name for name in names if name.endswith(STATE_FILE)]
    for trial in trials:
        checkpoints = [name for name in names if name.startswith(f"{trial}/checkpoint_")]
        assert [name.rsplit("/", 1)[1] for name in checkpoints] == [RECORD_FILE, EMBEDDINGS_FILE]
        with filesystem.open_input_stream(f"{study}/{trial}/result.json") as handle:
            records = [json.loads(line) for line in handle.read().decode().splitlines()]
        assert [r["epoch"] for r in records] == [1, 2, 3] and records[-1]["status"] == "completed"


def list_files(filesystem: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path)
