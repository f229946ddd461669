"""Run a study on a two-node Ray cluster on 127.0.0.1, kill the worker node without grace while a
trial runs on it (SIGKILL to its raylet, its trial workers and every other process of the node at
once, as a machine that loses power), and print what happened as JSON. Run by
tests/test_node_loss.py in its own process.

    python -m tests.reliability.node_loss SPEC STORAGE DATA_DIR"""

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import psutil

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: loopback only

from ray.cluster_utils import Cluster

from tests.processes import records, start_gloss, wait_for


def kill_without_grace(node) -> list[int]:
    """SIGKILL every process of `node` and their children (trial workers) in one sweep; the pids."""
    roots = [info.process.pid for infos in node.all_processes.values() for info in infos]
    pids = set(roots)
    for pid in roots:
        with contextlib.suppress(psutil.NoSuchProcess):
            pids |= {child.pid for child in psutil.Process(pid).children(recursive=True)}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(pids)


def main(spec: str, storage: str, data_dir: str) -> dict:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    try:
        args = ["run", spec, "--address", cluster.address, "--storage", storage, "--data-dir", data_dir]
        driver = start_gloss(args, Path(storage) / "driver.log")
        study = Path(storage) / "lost-node"

        def on_worker() -> bool:
            return any(r.get("node_id") == worker.node_id for rows in records(study).values() for r in rows)

        wait_for(on_worker, 300, "a trial reporting from the worker node")
        killed = kill_without_grace(worker)
        removed_at = time.time()
        cluster.remove_node(worker, allow_graceful=False)  # bookkeeping: its processes are gone
        code = driver.wait(timeout=600)
        trials = {
            trial.name: [
                (r["epoch"], r["node_id"] == worker.node_id, r["timestamp"] >= removed_at) for r in rows
            ]
            for trial, rows in records(study).items()
        }
        return {
            "code": code,
            "killed": killed,
            "address": cluster.address,
            "trials": trials,
            "statuses": {t.name: rows[-1]["status"] for t, rows in records(study).items()},
        }
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
