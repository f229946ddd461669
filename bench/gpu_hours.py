"""Issue 14, item 3: the `paper` protocol's GPU bill for bert-base on one H100-class GPU, with and
without frozen-fidelity screening, and its wall time on 8 GPUs.

    .venv/bin/python -m bench.gpu_hours [--mfu 0.35 --gpus 8 --promote 4]
    .venv/bin/python -m bench.gpu_hours --smoke    # R8 only

No GPU runs here; the bill is arithmetic on counted work and a throughput:
- trials: `gloss run paper --dry-run --json` (trials per phase, dataset and row, the batch size,
  max_length, max epochs, the search's concurrency);
- tokens per epoch: each dataset's real training split (90%; validation and test are embedded
  every epoch), tokenised with bert-base-uncased's WordPiece vocabulary (MiniLM's tokenizer uses
  the same), batched as the Trainer batches them (length-grouped training batches of 128,
  length-sorted evaluation batches of 256), padded tokens counted;
- FLOPs: 6 x parameters x tokens to train, 2 x parameters x tokens to evaluate (Kaplan et al.);
  G-Loss's own cost is left out (0.995-1.004x CE per step, BENCHMARKS.md item 1);
- epochs per trial: the authors' published early-stopping epochs (paper-results.csv, bert-base,
  standalone rows; integrated rows take the dataset's median of those), and 200 as the bound;
- throughput: peak bf16 989 TFLOP/s (H100 SXM, dense) x MFU, measured by `bench/gpu.py` when
  bench/results/gpu.json exists (its eager G-Loss row), else the --mfu assumption, named in the
  results. The CPU's measured rate (bench/results/gloss_overhead.json) is shown for scale.
Checkpoints: the hours a trial's checkpoints stall it (Tune uploads synchronously), a bert-base
state written to S3 in the time bench/checkpoint_time.py measured, under the previous default (a
state every epoch) and the default policy (a state once its cost is at most 5% of the time since
the last), by the trainable's own cadence (study/cost.py).
Screening replaces each search's full-fidelity trials by `--promote` of them, after frozen
trials (on CPUs) over embeddings computed once per dataset on the GPU.
Wall time on N GPUs: trials packed longest-first onto the GPUs phase by phase (the final phase
starts after the search), and no shorter than any one search's chain of trials at its
concurrency."""

import argparse
import heapq
import json
import math
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from analysis.paper import paper_results
from bench.common import RESULTS, parse, report
from study.cost import (
    PEAK_TFLOPS,
    WRITE_S_PER_GIB,
    epoch_flops,
    padded_tokens,
    parameters,
    state_bytes,
    states_written,
)
from study.presets import preset_text
from study.spec import parse_yaml, spec_from_mapping
from trainables.config import TrialConfig

REPO = Path(__file__).resolve().parents[1]
MAX_EPOCHS = 200
EVERY_EPOCH = {"checkpoint_every_epochs": 1, "checkpoint_max_share": None}  # the default before issue 24


def planned_trials(preset: str) -> list[dict]:
    """The preset's planned (phase, dataset, row) entries, from the public dry run."""
    command = [sys.executable, "-m", "study.cli", "run", preset, "--dry-run", "--json"]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "phase" in line]  # the last line is the dry run's own bill


def published_epochs() -> dict[tuple[str, str], float]:
    """The authors' early-stopping epoch per (dataset, row) for bert-base, and per dataset the
    median of those for rows they did not publish one for (keyed (dataset, '*'))."""
    table = paper_results()
    rows = table[(table.metric == "early_stop_epoch") & (table.model == "bert-base-uncased")]
    epochs = {(r.dataset, r.loss): float(r.value) for r in rows.itertuples()}
    for dataset, group in rows.groupby("dataset"):
        epochs[dataset, "*"] = float(statistics.median(group.value))
    return epochs


def throughput(mfu: float) -> tuple[float, str]:
    """FLOP/s on the GPU and where its MFU comes from."""
    measured = RESULTS / "gpu.json"
    if measured.exists():
        payload = json.loads(measured.read_text())
        row = next(r for r in payload["rows"] if r.get("objective") == "gloss" and not r.get("compiled"))
        return row["mfu"] * payload[
            "peak_tflops"
        ] * 1e12, f"measured by bench/gpu.py on {payload['machine']['cuda']}"
    return mfu * PEAK_TFLOPS * 1e12, f"assumed MFU {mfu} (no bench/results/gpu.json yet)"


def cpu_rate() -> float:
    """FLOP/s of this project's CPU, from item 1's measured MiniLM CE step (64 tokens, batch 32)."""
    payload = json.loads((RESULTS / "gloss_overhead.json").read_text())
    row = next(r for r in payload["rows"] if r["objective"] == "ce" and r["tokens"] == 64)
    return 6 * parameters("minilm") * row["tokens"] * row["batch"] / row["step_s"]


def schedule(durations: list[float], gpus: int) -> float:
    """Makespan of trials packed longest-first onto `gpus` GPUs."""
    loads = [0.0] * gpus
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def bill(entries, tokens, size, epochs_of, rate, gpus, promote, concurrency) -> dict:
    """GPU-hours and wall hours of the protocol, plain and screened, at one epochs assumption."""
    phases: dict[str, dict[str, list[float]]] = {"plain": defaultdict(list), "screened": defaultdict(list)}
    chains = {"plain": [], "screened": []}
    for entry in entries:
        seconds = epochs_of(entry) * epoch_flops(tokens[entry["dataset"]], size) / rate
        plain = entry["trials"]
        screened = min(promote, plain) if entry["phase"] == "search" else plain
        for arm, count in (("plain", plain), ("screened", screened)):
            phases[arm][entry["phase"]] += [seconds] * count
            if entry["phase"] == "search":
                chains[arm].append(math.ceil(count / concurrency) * seconds)
    embedding = sum(2 * size * (t["train"] + t["eval"]) / rate for t in tokens.values())
    result = {}
    for arm, by_phase in phases.items():
        total = sum(sum(d) for d in by_phase.values()) + (embedding if arm == "screened" else 0.0)
        wall = sum(schedule(d, gpus) for d in by_phase.values())
        result[arm] = {"gpu_hours": total / 3600, "wall_hours": max(wall, *chains[arm]) / 3600}
    return result


def test_hours(entries, tokens, size, epochs_of, rate) -> float:
    """GPU-hours spent embedding the test split at `epochs_of` epochs per trial. Since the test
    split is embedded only at epochs that become the best on validation, a trial that stopped
    early skips at least its last `patience` epochs: this at min(patience, epochs) is the least
    the plain bill saves, at every epoch the most."""
    return (
        sum(e["trials"] * epochs_of(e) * 2 * size * tokens[e["dataset"]]["test"] for e in entries)
        / rate
        / 3600
    )


def checkpoint_hours(entries, tokens, size, epochs_of, rate, policy: dict) -> float:
    """Hours the plain plan's trials spend writing checkpoints under `policy` (over their config's)."""
    total = 0.0
    for entry in entries:
        epochs = max(1, round(epochs_of(entry)))
        config = TrialConfig.from_dict({**entry["config"], "epochs": epochs, **policy})
        write_s = state_bytes(config, size) / 2**30 * WRITE_S_PER_GIB
        epoch_s = epoch_flops(tokens[entry["dataset"]], size) / rate
        total += entry["trials"] * states_written(config, epoch_s, write_s) * write_s
    return total / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--datasets", nargs="+", default=None, help="default: the preset's")
    parser.add_argument("--mfu", type=float, default=0.35, help="assumed until bench/gpu.py measures it")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--promote", type=int, default=4, help="full trials per search after screening")
    args = parse(parser, {"datasets": ["r8"]})
    entries = planned_trials(args.preset)
    if args.datasets:
        entries = [e for e in entries if e["dataset"] in args.datasets]
    first = entries[0]["config"]
    size = parameters(first["model"])
    datasets = sorted({e["dataset"] for e in entries})
    tokens = {d: padded_tokens(d, first["max_length"], first["batch_size"]) for d in datasets}
    published, rate = published_epochs(), throughput(args.mfu)
    concurrency = spec_from_mapping(
        parse_yaml(preset_text(args.preset), args.preset), args.preset
    ).search.max_concurrent
    assumptions = {
        "published early-stopping epochs": lambda e: published.get(
            (e["dataset"], e["loss"]), published.get((e["dataset"], "*"), MAX_EPOCHS)
        ),
        f"every trial runs {MAX_EPOCHS} epochs": lambda e: MAX_EPOCHS,
    }
    rows = []
    for name, epochs_of in assumptions.items():
        result = bill(entries, tokens, size, epochs_of, rate[0], args.gpus, args.promote, concurrency)
        stalls = {
            "checkpoint_hours_every_epoch": checkpoint_hours(
                entries, tokens, size, epochs_of, rate[0], EVERY_EPOCH
            ),
            "checkpoint_hours_default": checkpoint_hours(entries, tokens, size, epochs_of, rate[0], {}),
        }
        for arm, figures in result.items():
            rows.append({"epochs": name, "search": arm, **figures, **(stalls if arm == "plain" else {})})
    published_of = assumptions["published early-stopping epochs"]
    patience = first["patience"] or 0
    per_dataset = [
        {"dataset": d, **t, "gflop_per_epoch": epoch_flops(t, size) / 1e9} for d, t in tokens.items()
    ]
    report(
        "gpu_hours",
        rows,
        {
            "parameters": size,
            "throughput_flops": rate[0],
            "throughput_from": rate[1],
            "cpu_flops_measured": cpu_rate(),
            "gpus": args.gpus,
            "promote": args.promote,
            "datasets": per_dataset,
            "trials": {p: sum(e["trials"] for e in entries if e["phase"] == p) for p in ("search", "final")},
            "test_evaluation_published_epochs": {
                "gpu_hours_every_epoch": test_hours(entries, tokens, size, published_of, rate[0]),
                "saved_at_least_gpu_hours": test_hours(
                    entries, tokens, size, lambda e: min(patience, published_of(e)), rate[0]
                ),
            },
        },
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
