"""Item 4: wall time of N identical trials through `gloss run` against the same training called
directly in one process, with Ray's start-up and each trial's time outside training (set-up,
evaluation, checkpoints, reporting) reported apart.

    .venv/bin/python -m bench.ray_overhead [--trials 4 --epochs 40]
    .venv/bin/python -m bench.ray_overhead --smoke    # tiny-bert, 200 R8 documents, 2 x 2 epochs

Both arms run the trials one at a time on one thread each (the Ray arm with --max-concurrent 1
and 1 CPU per trial, --no-report), on frozen MiniLM embeddings of the whole of R8 (cached
beforehand), in alternating rounds; medians over rounds."""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from bench.common import median, parse, report, seconds
from trainables.config import TrialConfig
from trainables.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def training(args: argparse.Namespace) -> dict:
    """The trials' settings shared by both arms: no early stopping, the whole of R8 unless a subset."""
    subset = {"train_size": args.subset, "eval_size": args.subset // 2} if args.subset else {}
    return {"model": args.model, "epochs": args.epochs, "patience": None, **subset}


def direct(trials: int, settings: dict) -> tuple[float, float]:
    """Total wall time and total training time of the trials run in this process."""
    torch.set_num_threads(1)
    train_time = 0.0
    start = time.perf_counter()
    for seed in range(trials):
        trainer = Trainer(TrialConfig.from_dict({"dataset": "r8", "loss": "gloss", "seed": seed, **settings}))
        records = list(trainer.run())
        train_time += records[-1]["train_time_s"]
    return time.perf_counter() - start, train_time


def ray_startup() -> float:
    """Seconds for a fresh process to start a local Ray (the process's own start-up excluded)."""
    code = (
        "import time; from study.ray_session import prepare_environment; prepare_environment(None); "
        "from study.ray_session import connect; t = time.perf_counter(); connect(None); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


EVERY_EPOCH = {"every_epochs": 1, "max_share": None}  # the checkpoint default before issue 24


def through_gloss(trials: int, settings: dict, checkpoint: dict | None = None) -> tuple[float, float]:
    """Wall time of `gloss run` (Ray start-up included) and the trials' total training time,
    under the default checkpoint policy or `checkpoint`."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": "overhead",
                    "kind": "grid",
                    "datasets": ["r8"],
                    "losses": ["gloss"],
                    "model": settings["model"],
                    "seeds": list(range(trials)),
                    "training": {k: v for k, v in settings.items() if k != "model"},
                    **({"checkpoint": checkpoint} if checkpoint else {}),
                }
            )
        )
        wall = seconds(
            lambda: subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "study.cli",
                    "run",
                    str(spec),
                    "--storage",
                    folder,
                    "--max-concurrent",
                    "1",
                    "--no-report",
                ],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
        )
        records = [json.loads(p.read_text().splitlines()[-1]) for p in Path(folder).rglob("result.json")]
        if len(records) != trials or any(r["status"] != "completed" for r in records):
            raise RuntimeError(f"gloss run finished {len(records)} of {trials} trials: {records}")
        return wall, sum(r["train_time_s"] for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both arms (medians)")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--subset", type=int, help="training documents per trial (default: all of R8)")
    args = parse(parser, {"trials": 2, "epochs": 2, "rounds": 1, "model": "tiny-bert", "subset": 200})
    settings = training(args)
    direct(1, {**settings, "epochs": 1})  # builds the embedding cache, so neither arm pays for it
    runs = {"direct": [], "ray": [], "startup": [], "every_epoch": []}
    for _ in range(args.rounds):
        runs["direct"].append(direct(args.trials, settings))
        runs["startup"].append(ray_startup())
        runs["ray"].append(through_gloss(args.trials, settings))
        runs["every_epoch"].append(through_gloss(args.trials, settings, EVERY_EPOCH))
    direct_wall, direct_train = (median([run[i] for run in runs["direct"]]) for i in (0, 1))
    ray_wall, ray_train = (median([run[i] for run in runs["ray"]]) for i in (0, 1))
    startup = median(runs["startup"])
    before_wall, before_train = (median([run[i] for run in runs["every_epoch"]]) for i in (0, 1))
    rows = [
        {
            "arm": "direct, one process",
            "wall_s": direct_wall,
            "training_s": direct_train,
            "other_per_trial_s": (direct_wall - direct_train) / args.trials,
            "ratio": 1.0,
        },
        {
            "arm": "gloss run (Ray)",
            "wall_s": ray_wall,
            "training_s": ray_train,
            "other_per_trial_s": (ray_wall - startup - ray_train) / args.trials,
            "ratio": ray_wall / direct_wall,
        },
        {
            "arm": "gloss run without Ray start-up",
            "wall_s": ray_wall - startup,
            "training_s": ray_train,
            "other_per_trial_s": "",
            "ratio": (ray_wall - startup) / direct_wall,
        },
        {
            "arm": "gloss run, a checkpoint every epoch (the previous default)",
            "wall_s": before_wall,
            "training_s": before_train,
            "other_per_trial_s": (before_wall - startup - before_train) / args.trials,
            "ratio": before_wall / direct_wall,
        },
    ]
    report(
        "ray_overhead",
        rows,
        {
            "trials": args.trials,
            "epochs": args.epochs,
            "rounds": args.rounds,
            "training": settings,
            "ray_startup_s": startup,
        },
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
