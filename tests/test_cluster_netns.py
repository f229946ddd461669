"""A study on a cluster whose nodes share no disk (tests/cluster/netns.py): a head that takes no
trials and two one-CPU workers, each in its own network and mount namespace, with an S3-compatible
server as the only shared storage. Driven from the head with `gloss run --address`, as on a real
cluster: a folder on the head is refused before any trial starts; a study on the bucket completes
although one worker is SIGKILLed mid-trial, and the moved trial ends exactly as if uninterrupted;
and no node's Ray logs hold the bucket's key or Ray's token."""

import json
import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow.fs
import pytest
import yaml

from tests.cluster.netns import available, leftovers, netns_cluster
from tests.processes import uninterrupted_run, wait_for
from tests.s3_server import CREDENTIALS
from tests.test_security import secrets_found

pytestmark = [pytest.mark.cluster, pytest.mark.skipif(bool(available()), reason=available() or "ok")]

EPOCHS = 8
SPEC = {
    "name": "no-shared-disk",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "full",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0],
    # Every epoch, so the records show each epoch once; the default policy (a checkpoint when
    # it costs at most 5% of the time since the last) is killed in test_trial_faults.
    "checkpoint": {"every_epochs": 1},
    "max_failures": 3,
    "resources": {"cpu": 1, "gpu": 0},
    "training": {
        "train_size": 160,
        "eval_size": 64,
        "max_length": 48,
        "batch_size": 16,
        "epochs": EPOCHS,
        "lr": 1.0e-3,
        "patience": None,
    },
}


@pytest.fixture(scope="module")
def cluster():
    # Files the head reads live outside /tmp: every node's /tmp is private.
    scratch = Path(tempfile.mkdtemp(prefix="gloss-netns-", dir="/var/tmp"))
    try:
        with netns_cluster(scratch) as running:
            (scratch / "spec.yaml").write_text(yaml.safe_dump(SPEC))
            yield running
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert not [name for name in leftovers() if running.tag in name], "namespaces or links left behind"


def s3_files(cluster, prefix: str) -> dict[str, int]:
    """Object keys under `prefix` with their sizes, read from this machine through the bridge."""
    fs = pyarrow.fs.S3FileSystem(
        endpoint_override=cluster.s3.endpoint, access_key="gloss-test", secret_key="gloss-test-secret"
    )
    selector = pyarrow.fs.FileSelector(f"{cluster.s3.bucket}/{prefix}", recursive=True, allow_not_found=True)
    return {info.path: info.size for info in fs.get_file_info(selector)}, fs


def test_a_folder_on_the_head_is_refused_before_any_trial(cluster):
    log = cluster.scratch / "local-storage.log"
    driver = cluster.driver(
        [
            "run",
            str(cluster.scratch / "spec.yaml"),
            "--address",
            cluster.address,
            "--storage",
            "/tmp/results",
        ],
        log,
    )
    assert driver.wait(timeout=300) == 2, log.read_text()[-3000:]
    lines = [line for line in log.read_text().splitlines() if line.startswith("gloss: error:")]
    assert len(lines) == 1
    worker_addresses = {cluster.worker(1).address, cluster.worker(2).address}
    assert any(address in lines[0] for address in worker_addresses), lines[0]
    assert "cannot use /tmp/results/no-shared-disk" in lines[0] and "s3://" in lines[0]
    assert not cluster.head_path("/tmp/results/no-shared-disk/grid").exists(), "a trial started"


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_driver_without_the_token_is_refused(cluster, token):
    env = {key: value for key, value in cluster.node_env().items() if not key.startswith("RAY_AUTH")}
    if token:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    log = cluster.scratch / f"token-{token}.log"
    storage = cluster.s3.uri("refused")
    args = ["run", str(cluster.scratch / "spec.yaml"), "--address", cluster.address, "--storage", storage]
    assert cluster.driver(args, log, env=env).wait(timeout=300) == 2, log.read_text()[-3000:]
    errors = [line for line in log.read_text().splitlines() if line.startswith("gloss: error:")]
    assert len(errors) == 1 and "refused this client's token" in errors[0], log.read_text()[-3000:]


def test_study_on_a_bucket_survives_a_worker_killed_without_warning(cluster, data_dir):
    log = cluster.scratch / "study.log"
    storage = cluster.s3.uri("studies")
    driver = cluster.driver(
        ["run", str(cluster.scratch / "spec.yaml"), "--address", cluster.address, "--storage", storage], log
    )

    def both_trials_past_epoch_two() -> bool:
        files, _ = s3_files(cluster, "studies/no-shared-disk/grid")
        past_two = re.compile(r"/checkpoint_0*[1-9]\d*/")  # keep 1: earlier ones are gone
        trials = {path.split("/")[4] for path in files if past_two.search(path)}
        return len(trials) == 2 or driver.poll() is not None

    wait_for(both_trials_past_epoch_two, 600, "both trials checkpointing their second epoch")
    assert driver.poll() is None, log.read_text()[-3000:]
    cluster.kill_host("w2")
    killed_at = time.time()
    assert driver.wait(timeout=900) == 0, log.read_text()[-3000:]

    files, fs = s3_files(cluster, "studies/no-shared-disk")
    results = [path for path in files if path.endswith("/result.json")]
    assert len(results) == 2, "both trials kept their records"
    trials = {}
    for path in results:
        with fs.open_input_stream(path) as handle:
            trials[path] = [json.loads(line) for line in handle.read().decode().splitlines() if line]
    assert {rows[-1]["status"] for rows in trials.values()} == {"completed"}
    assert "r8" in log.read_text() and "trials not finished normally" not in log.read_text()

    killed_node = cluster.worker(2).address
    moved = [rows for rows in trials.values() if any(r["node_ip"] == killed_node for r in rows)]
    assert len(moved) == 1, "one trial ran on the killed worker"
    rows = moved[0]
    epochs = [r["epoch"] for r in rows]
    assert epochs == list(range(1, EPOCHS + 1)), "each epoch recorded once, in order"
    nodes = [r["node_ip"] for r in rows]
    on_killed = [e for e, n in zip(epochs, nodes, strict=True) if n == killed_node]
    assert on_killed == epochs[: len(on_killed)] and len(on_killed) < EPOCHS, "a prefix ran on w2"
    assert set(nodes[len(on_killed) :]) == {cluster.worker(1).address}, "the rest ran on w1"
    assert rows[-1]["timestamp"] >= killed_at - 1

    expected = uninterrupted_run(rows[-1]["config"], data_dir)
    for key in ("best_score", "selected_test_macro_f1", "selected_test_accuracy", "train_loss"):
        assert math.isclose(rows[-1][key], expected[key], rel_tol=1e-9, abs_tol=1e-12), key
    assert any(key.endswith("report/report.html") for key in files), "the report sits in the bucket"
    check_no_secret_in_node_logs(cluster)


def check_no_secret_in_node_logs(cluster) -> None:
    """Neither the bucket's secret key (in the nodes' credentials file) nor Ray's token (in their
    environment) is in any Ray log of the head or the surviving worker, which live in each
    node's private /tmp; control: a secret planted in one of those logs is found."""
    values = {"AWS_SECRET_ACCESS_KEY": CREDENTIALS["AWS_SECRET_ACCESS_KEY"], "ray token": cluster.token}
    roots = [Path(f"/proc/{cluster.processes[role].pid}/root/tmp/ray") for role in ("head", "w1")]
    logs = [path for root in roots for path in root.glob("session_*/logs/*") if path.is_file()]
    assert {path.parts[2] for path in logs} == {str(cluster.processes[r].pid) for r in ("head", "w1")}
    assert secrets_found(roots, values) == set()
    planted = max(logs, key=lambda path: path.stat().st_size)
    planted.write_bytes(planted.read_bytes() + cluster.token.encode())
    assert secrets_found(roots, values) == {(planted, "ray token")}
