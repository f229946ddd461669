"""One driver per study: a second `gloss run` of a running study is refused in one line naming
the holder, on local storage and on a real S3-compatible server; stale leases are taken over,
live ones only with --take-over; a driver whose lease is taken stops."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import yaml

from common.errors import GlossError
from study import lease as lease_module
from study.lease import LEASE_FILE, LeaseLost, StudyLease, read_lease, study_lease
from tests.processes import start_gloss, wait_for
from tests.s3_server import s3_server

GRID = {
    "name": "leased",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "datasets": ["r8"],
    "losses": ["ce"],
    "seeds": [0, 1],
    "training": {"train_size": 120, "eval_size": 60, "max_length": 32, "epochs": 8, "patience": None},
}


def write_lease(root, host: str, pid: int, age_s: float) -> None:
    now = time.time()
    lease = {"holder": "someone", "host": host, "pid": pid, "started": now - age_s, "heartbeat": now - age_s}
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, LEASE_FILE), "w") as handle:
        json.dump(lease, handle)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_live_lease_refuses_and_take_over_takes_it(tmp_path):
    write_lease(tmp_path, "another-host", 4242, age_s=5)
    with pytest.raises(GlossError, match=r"being run by another driver \(pid 4242 on another-host"):
        StudyLease(str(tmp_path)).acquire()
    StudyLease(str(tmp_path), take_over=True).acquire()
    assert read_lease(str(tmp_path)).pid == os.getpid()


@pytest.mark.parametrize(
    ("host", "pid", "age_s"),
    [("another-host", 4242, 600), (socket.gethostname(), None, 1)],
    ids=["heartbeat stopped", "holder process gone"],
)
def test_a_stale_lease_is_taken_over(tmp_path, host, pid, age_s):
    write_lease(tmp_path, host, pid or dead_pid(), age_s)
    StudyLease(str(tmp_path)).acquire()
    assert read_lease(str(tmp_path)).holder != "someone"


def test_a_driver_whose_lease_is_taken_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(lease_module, "HEARTBEAT_S", 0.2)
    # As in a `gloss run` process: Ctrl-C raises KeyboardInterrupt (an in-process Ray started by
    # another test may have installed a handler of its own).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(LeaseLost, match="taken over by another driver"), study_lease(str(tmp_path)):
            write_lease(tmp_path, "another-host", 4242, age_s=0)
            time.sleep(5)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert read_lease(str(tmp_path)).holder == "someone", "the loser leaves the new holder's lease"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_second_driver_of_a_running_study_is_refused(tmp_path, data_dir, where, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(GRID))
    with s3_server(tmp_path / "s3.log") as s3:
        storage = s3.uri("studies") if where == "s3" else str(tmp_path / "results")
        env = s3.env if where == "s3" else {}
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # this process reads the lease too
        args = ["run", str(spec), "--storage", storage, "--data-dir", str(data_dir), "--max-concurrent", "1"]
        first = start_gloss([*args, "--no-report"], tmp_path / "first.log", env=env)
        root = f"{storage}/leased"
        wait_for(lambda: read_lease(root) is not None or first.poll() is not None, 120, "the first lease")
        second = start_gloss([*args, "--resume"], tmp_path / "second.log", env=env)
        assert second.wait(timeout=120) == 2
        errors = [
            line for line in (tmp_path / "second.log").read_text().splitlines() if "gloss: error" in line
        ]
        assert len(errors) == 1 and f"pid {first.pid} on {socket.gethostname()}" in errors[0]
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
        assert read_lease(root) is None, "released at the end"
        if where == "s3":
            trials = {
                key.split("/")[3] for key in s3.keys("studies/leased/grid/") if key.endswith("result.json")
            }
        else:
            trials = {p.parent.name for p in (tmp_path / "results" / "leased").rglob("result.json")}
    assert len(trials) == 2, "each trial once"
