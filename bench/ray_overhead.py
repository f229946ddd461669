"""Item 4: wall time of N identical trials through `gloss run` against the same training run by a
plain script, with the time split into training, the rest of each trial (set-up, evaluation,
checkpoints, reporting) and what lies outside the trials (process start-up, imports, Ray's start
and stop, Tune's set-up, the closing summary).

    .venv/bin/python -m bench.ray_overhead [--trials 4 --epochs 40]
    .venv/bin/python -m bench.ray_overhead --smoke    # tiny-bert, 200 R8 documents, 2 x 2 epochs

The direct arm is what a user would otherwise run: a fresh Python process that imports torch and
the Trainer and trains the trials in a loop. Its time from the end of its imports is kept too
(the definition before 2026-12-07, which charged `gloss run` alone for starting Python and
importing torch). Both arms run the trials one at a time on one thread each (the Ray arm with
--max-concurrent 1 and 1 CPU per trial, --no-report), on frozen MiniLM embeddings of the whole
of R8 (cached beforehand), in alternating rounds; medians over rounds."""

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
EVERY_EPOCH = {"every_epochs": 1, "max_share": None}  # the checkpoint default before issue 24


def training(args: argparse.Namespace) -> dict:
    """The trials' settings shared by both arms: no early stopping, the whole of R8 unless a subset."""
    subset = {"train_size": args.subset, "eval_size": args.subset // 2} if args.subset else {}
    return {"model": args.model, "epochs": args.epochs, "patience": None, **subset}


def train_directly(trials: int, settings: dict) -> dict:
    """Train the trials in this process, one thread each; seconds in all, in trials (from building
    each Trainer to its last epoch) and in training steps."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    in_trials = in_training = 0.0
    for seed in range(trials):
        begun = time.perf_counter()
        trainer = Trainer(TrialConfig.from_dict({"dataset": "r8", "loss": "gloss", "seed": seed, **settings}))
        records = list(trainer.run())
        in_trials += time.perf_counter() - begun
        in_training += records[-1]["train_time_s"]
    return {"in_process_s": time.perf_counter() - start, "trials_s": in_trials, "training_s": in_training}


def direct(trials: int, settings: dict) -> dict:
    """`train_directly` in a fresh process (the plain script), with that process's wall time."""
    code = (
        "import json, sys; from bench.ray_overhead import train_directly; "
        "print(json.dumps(train_directly(int(sys.argv[1]), json.loads(sys.argv[2]))))"
    )
    command = [sys.executable, "-c", code, str(trials), json.dumps(settings)]
    start = time.perf_counter()
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    return {"wall_s": wall, **json.loads(out.stdout.strip().splitlines()[-1])}


def ray_startup() -> float:
    """Seconds for a fresh process to start a local Ray (the process's own start-up excluded)."""
    code = (
        "import time; from study.ray_session import prepare_environment; prepare_environment(None); "
        "from study.ray_session import connect; t = time.perf_counter(); connect(None); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def through_gloss(trials: int, settings: dict, checkpoint: dict | None = None) -> dict:
    """`gloss run` of the trials under the default checkpoint policy or `checkpoint`: its wall time,
    and from the records the seconds in trials (Tune's time_total_s: from the trial function's
    start, imports included, to its last report) and in training steps."""
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
        gloss = [sys.executable, "-m", "study.cli", "run", str(spec), "--storage", folder]
        gloss += ["--max-concurrent", "1", "--no-report"]
        wall = seconds(lambda: subprocess.run(gloss, cwd=REPO, check=True, capture_output=True))
        records = [json.loads(p.read_text().splitlines()[-1]) for p in Path(folder).rglob("result.json")]
        if len(records) != trials or any(r["status"] != "completed" for r in records):
            raise RuntimeError(f"gloss run finished {len(records)} of {trials} trials: {records}")
        return {
            "wall_s": wall,
            "trials_s": sum(r["time_total_s"] for r in records),
            "training_s": sum(r["train_time_s"] for r in records),
        }


def row(arm: str, run: dict, trials: int, baseline: float) -> dict:
    """One arm's line: where its seconds went, and its wall time over the direct script's."""
    return {
        "arm": arm,
        "wall_s": run["wall_s"],
        "training_s": run["training_s"],
        "rest_of_trial_per_trial_s": (run["trials_s"] - run["training_s"]) / trials,
        "outside_trials_s": run["wall_s"] - run["trials_s"],
        "ratio": run["wall_s"] / baseline,
    }


def medians(runs: list[dict]) -> dict:
    return {key: median([run[key] for run in runs]) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both arms (medians)")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--subset", type=int, help="training documents per trial (default: all of R8)")
    args = parse(parser, {"trials": 2, "epochs": 2, "rounds": 1, "model": "tiny-bert", "subset": 200})
    settings = training(args)
    train_directly(1, {**settings, "epochs": 1})  # builds the embedding cache, so neither arm pays for it
    runs = {"direct": [], "ray": [], "startup": [], "every_epoch": []}
    for _ in range(args.rounds):
        runs["direct"].append(direct(args.trials, settings))
        runs["startup"].append(ray_startup())
        runs["ray"].append(through_gloss(args.trials, settings))
        runs["every_epoch"].append(through_gloss(args.trials, settings, EVERY_EPOCH))
    script, ray, before = (medians(runs[arm]) for arm in ("direct", "ray", "every_epoch"))
    startup, baseline = median(runs["startup"]), script["wall_s"]
    in_process = {**script, "wall_s": script["in_process_s"]}
    rows = [
        row("direct, a fresh process (a plain script)", script, args.trials, baseline),
        row(
            "direct, from the end of its imports (the definition before 2026-12-07)",
            in_process,
            args.trials,
            baseline,
        ),
        row("gloss run (Ray)", ray, args.trials, baseline),
        row(
            "gloss run, a checkpoint every epoch (the checkpoint default before issue 24)",
            before,
            args.trials,
            baseline,
        ),
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
            "ratio_to_in_process_direct": ray["wall_s"] / script["in_process_s"],
            "runs": runs,
        },
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
