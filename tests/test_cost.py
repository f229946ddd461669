"""The dry run's bill: its GPU-hours are bench.gpu_hours's on the same plan, and its checkpoint
bytes follow the trainer state and the policy bench/checkpoint_bytes.py measured."""

import contextlib
import dataclasses
import io
import json
import math
from pathlib import Path

import pytest

from bench.gpu_hours import bill
from study.cli import main
from study.cost import (
    STATE_BYTES_PER_PARAMETER,
    WRITE_S_PER_GIB,
    padded_tokens,
    parameters,
    states_written,
    throughput,
)
from trainables.config import TrialConfig

MEASURED = json.loads((Path(__file__).parents[1] / "bench/results/checkpoint_bytes.json").read_text())


def dry_run(*args: str) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", "paper", "--dry-run", "--json", *args]) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def r8_paper(data_dir) -> list[dict]:
    return dry_run("--data-dir", str(data_dir), "--set", "datasets=[r8]")


def test_the_dry_runs_gpu_hours_are_bench_gpu_hours_on_the_same_plan(r8_paper):
    entries, cost = r8_paper[:-1], r8_paper[-1]["cost"]
    tokens = {"r8": padded_tokens("r8", 128, 128)}
    reference = bill(
        entries, tokens, parameters("bert-base"), lambda e: e["config"]["epochs"], throughput(), 8, 4, 4
    )
    assert cost["total"]["gpu_hours"] == pytest.approx(reference["plain"]["gpu_hours"], rel=1e-9)
    assert cost["total"]["trials"] == sum(e["trials"] for e in entries) == 115 + 24
    assert cost["search"]["epochs"] == 115 * 200 and cost["final"]["epochs"] == 24 * 200
    assert cost["total"]["gpu_hours"] == pytest.approx(
        cost["search"]["gpu_hours"] + cost["final"]["gpu_hours"]
    )


def test_checkpoint_bytes_follow_the_measured_state_and_policy(r8_paper):
    rows = {row["policy"].split(":")[0]: row for row in MEASURED["rows"]}
    state = STATE_BYTES_PER_PARAMETER * parameters("bert-base")
    assert state / 2**30 == pytest.approx(rows["before"]["state_GiB"], rel=1e-3), "a bert-base trainer state"
    every = TrialConfig(
        dataset="r8", fidelity="full", epochs=4, checkpoint_final_state=False, checkpoint_every_epochs=1
    )
    every = dataclasses.replace(every, checkpoint_max_share=None)
    kept = dataclasses.replace(every, checkpoint_final_state=True)
    assert states_written(every, 1.0, 0.1) == rows["after, the default"]["state_checkpoints"] == 3
    assert states_written(kept, 1.0, 0.1) == rows["before"]["state_checkpoints"] == 4
    every_minute = dataclasses.replace(every, checkpoint_every_epochs=None, checkpoint_every_minutes=1.0)
    assert states_written(every_minute, 30.0, 0.1) == 1, "epoch 2 (epoch 4 is the last: no state)"
    cost = r8_paper[-1]["cost"]
    per_trial = rows["after, the default"]["peak_GiB"] * 2**30
    assert cost["search"]["checkpoint_peak_bytes"] <= 8 * 4 * per_trial * (1 + 1e-3), (
        "8 searches at 4 live trials each, at most 3 states each (keep 2 and the one being written)"
    )


def test_the_share_policy_writes_a_state_when_its_cost_is_5_percent_of_the_time_since():
    """A bert-base state takes a minute to reach object storage (bench/checkpoint_time.py); at the
    bill's rate an R8 epoch is about a second: the trial writes a state once 20 minutes of training
    have passed, and then every 20 minutes. Every-epoch checkpoints would cost 60 s per second of
    training."""
    measured = json.loads((Path(__file__).parents[1] / "bench/results/checkpoint_time.json").read_text())
    full_s3 = next(r for r in measured["rows"] if r["state"] == "full" and r["storage"].startswith("S3"))
    write_s = full_s3["gib"] * WRITE_S_PER_GIB
    assert write_s == pytest.approx(full_s3["write_s"], rel=1e-3)
    default = TrialConfig(
        dataset="r8",
        fidelity="full",
        epochs=2000,
        checkpoint_final_state=False,
        checkpoint_every_epochs=None,
        checkpoint_max_share=0.05,
    )
    written = states_written(default, 1.0, write_s)
    assert written == (2000 - 1) // math.ceil(write_s / 0.05) == 1
    assert written * write_s <= 0.05 * 2000, "at most 5% of the time"


def test_the_text_dry_run_prints_the_bill(data_dir, capsys):
    assert main(["run", "paper", "--dry-run", "--data-dir", str(data_dir), "--set", "datasets=[r8]"]) == 0
    out = capsys.readouterr().out
    assert "cost in total: 139 trials, at most 27,800 epochs" in out
    assert "GPU-hours on one H100 SXM" in out and "held at the peak" in out


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (["fidelity=frozen", "model=minilm"], "not estimated below full fine-tuning"),
        (["model=distilbert"], "the model distilbert is not available here"),
    ],
)
def test_no_bill_says_why(changes, why, data_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sets = [arg for change in changes for arg in ("--set", change)]
    last = dry_run("--data-dir", str(data_dir), "--set", "datasets=[r8]", *sets)[-1]
    assert last["cost"] is None and why in last["why"]
