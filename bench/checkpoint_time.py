"""Issue 24, item 2: what a checkpoint costs beside the training it protects.

Writes a real trainer state of the model (`Trainer.state_dict`'s layout: fp32 weights, and
Adam's two moments unless weights-only) as a trial does: torch.save into a temporary folder, then
the folder copied into storage with pyarrow's copy_files, as Ray persists a reported checkpoint
(synchronously: `ray.tune.report` has no asynchronous upload; Ray Train's alpha
`checkpoint_upload_mode` is not offered to Tune function trainables). Storage: a local folder and
a real S3 server on 127.0.0.1 (moto's). Then, per dataset, the seconds of checkpoint per second
of training at the GPU bill's rate (bench/results/gpu_hours.json): every epoch (the former
default) and under the default policy (a checkpoint once its cost is at most 5% of the time since
the last one).

    .venv/bin/python -m bench.checkpoint_time            # bert-base, 3 repeats
    .venv/bin/python -m bench.checkpoint_time --smoke    # tiny-bert, 1 repeat"""

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import torch
from pyarrow import fs as pafs

from bench.common import RESULTS, median, parse, report, seconds

SMOKE = {"model": "tiny", "repeats": 1}
MAX_SHARE = 0.05


def trainer_state(model_name: str, optimizer: bool) -> dict:
    """A state of a BERT encoder of the named size after one Adam step (moments filled)."""
    from transformers import BertConfig, BertModel

    config = (
        BertConfig()
        if model_name == "bert-base"
        else BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    )
    model = BertModel(config)
    adam = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model(input_ids=torch.ones(1, 8, dtype=torch.long)).last_hidden_state.sum().backward()
    adam.step()
    return {"model": model.state_dict(), "optimizer": adam.state_dict() if optimizer else None}


def write(state: dict, filesystem: pafs.FileSystem, destination: str) -> tuple[float, int]:
    """Seconds to save `state` into a fresh folder and copy it to `destination`; its bytes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trainer_state.pt"

        def save_and_copy() -> None:
            torch.save(state, path)
            filesystem.create_dir(destination)
            pafs.copy_files(folder, destination, destination_filesystem=filesystem)

        return seconds(save_and_copy), path.stat().st_size


def measure(state: dict, where: str, filesystem: pafs.FileSystem, root: str, repeats: int) -> dict:
    times, size = [], 0
    for i in range(repeats):
        elapsed, size = write(state, filesystem, f"{root}/checkpoint_{i:06d}")
        times.append(elapsed)
    return {"storage": where, "gib": size / 2**30, "write_s": median(times), "write_s_runs": times}


def s3_filesystem(server) -> pafs.S3FileSystem:
    endpoint = server.endpoint.removeprefix("http://")
    os.environ.update(server.env)
    return pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", region="us-east-1")


def shares(rows: list[dict]) -> list[dict]:
    """Per dataset and measured write: checkpoint seconds per training second at the GPU rate."""
    bill = json.loads((RESULTS / "gpu_hours.json").read_text())
    out = []
    for dataset in bill["datasets"]:
        epoch_s = dataset["gflop_per_epoch"] * 1e9 / bill["throughput_flops"]
        for row in rows:
            interval = max(1, math.ceil(row["write_s"] / (MAX_SHARE * epoch_s)))
            out.append(
                {
                    "dataset": dataset["dataset"],
                    "storage": row["storage"],
                    "state": row["state"],
                    "epoch_s_at_gpu_rate": epoch_s,
                    "every_epoch": row["write_s"] / epoch_s,
                    "default_policy_every_n_epochs": interval,
                    "default_policy": row["write_s"] / (interval * epoch_s + row["write_s"]),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base", choices=["bert-base", "tiny"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parse(parser, SMOKE)
    from tests.s3_server import s3_server

    rows = []
    with tempfile.TemporaryDirectory() as local, s3_server(Path(local) / "moto.log") as server:
        storages = [
            ("local disk", pafs.LocalFileSystem(), local),
            ("S3 (moto, 127.0.0.1)", s3_filesystem(server), f"{server.bucket}/bench"),
        ]
        for state_name, optimizer in [("full", True), ("weights only", False)]:
            state = trainer_state(args.model, optimizer)
            for where, filesystem, root in storages:
                row = measure(
                    state, where, filesystem, f"{root}/{state_name.replace(' ', '-')}", args.repeats
                )
                rows.append({"state": state_name, **row})
    notes = {"model": args.model, "max_share": MAX_SHARE, "per_dataset": shares(rows)}
    report("checkpoint_time", rows, notes, smoke=args.smoke)


if __name__ == "__main__":
    main()
