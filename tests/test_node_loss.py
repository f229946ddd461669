"""Node loss: in a two-node cluster on 127.0.0.1 the worker node is SIGKILLed mid-study, all its
processes at once and without grace; its trials continue on the remaining node from their
checkpoints and every trial completes."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.faults  # a minute each: `make test-cluster` runs them

SPEC = {
    "name": "lost-node",
    "kind": "grid",
    "model": "tiny-bert",
    "fidelity": "full",
    "datasets": ["r8"],
    "losses": ["ce", "gloss"],
    "seeds": [0, 1],
    # Every epoch, so the records show each epoch once; the default policy (a checkpoint when
    # it costs at most 5% of the time since the last) is killed in test_trial_faults.
    "checkpoint": {"every_epochs": 1},
    "max_failures": 3,
    "training": {
        "train_size": 96,
        "eval_size": 48,
        "max_length": 48,
        "batch_size": 16,
        "epochs": 6,
        "lr": 1.0e-3,
        "patience": None,
    },
}


def test_trials_of_a_lost_node_finish_on_the_other(tmp_path, data_dir):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    run = subprocess.run(
        [sys.executable, "-m", "tests.reliability.node_loss", str(spec), str(tmp_path), str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 0 and outcome["address"].startswith("127.0.0.1:")
    assert len(outcome["killed"]) >= 2, "the node's raylet and at least one trial worker were killed"
    assert len(outcome["trials"]) == 4 and set(outcome["statuses"].values()) == {"completed"}
    moved = [rows for rows in outcome["trials"].values() if any(on_worker for _, on_worker, _ in rows)]
    assert moved, "a trial ran on the worker before it was removed"
    for rows in moved:
        epochs = [epoch for epoch, _, _ in rows]
        assert epochs == sorted(set(epochs)) == list(range(1, 7)), "continued from its checkpoint"
        assert not any(on_worker for _, on_worker, after in rows if after), "nothing ran on the removed node"
        assert any(after for _, _, after in rows), "the trial went on after the node was removed"
