"""Item 2: forward + backward time and extra peak memory of the G-Loss term alone for batch sizes
32..2048: fully connected against kNN graphs, harmonic against spreading propagation, float32
against float64 solves; and its share of a MiniLM full fine-tuning step of the same batch.

    .venv/bin/python -m bench.gloss_scaling [--sizes 32 128 512 2048]
    .venv/bin/python -m bench.gloss_scaling --smoke    # batch 16, one repeat

Every (size, variant) runs in a fresh process, so its peak memory (max RSS above the process's
level before the first loss call) is its own. The encoder step is scaled linearly in the batch
from bench/results/gloss_overhead.json (128 tokens) when that file exists."""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, median, parse, report, seconds

VARIANTS = {
    "full, harmonic, f64": {},
    "full, harmonic, f32": {"solve_dtype": "float32"},
    "k=16, harmonic, f64": {"k": 16},
    "full, spreading, f64": {"propagation": "spreading"},
    "full, spreading, f32": {"propagation": "spreading", "solve_dtype": "float32"},
    "k=16, spreading, f64": {"k": 16, "propagation": "spreading"},
}


def measure(size: int, variant: str, repeats: int) -> dict:
    """In this process: time and extra peak memory of forward + backward at one batch size."""
    import torch

    from trainables.losses import LossContext
    from trainables.losses.gloss import GLoss, GLossParams

    torch.manual_seed(0)
    classes = 8
    labels = torch.arange(size) % classes
    centres = torch.randn(classes, 384)
    embeddings = (centres[labels] + 0.8 * torch.randn(size, 384)).requires_grad_(True)
    loss = GLoss(
        GLossParams(sigma=0.5, **VARIANTS[variant]), LossContext(classes, (size // classes,) * classes)
    )

    def step() -> None:
        embeddings.grad = None
        loss(embeddings, labels).value.backward()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return {"loss_s": median([seconds(step) for _ in range(repeats)]), "extra_peak_mb": peak_mb}


def encoder_step_s(size: int) -> float | None:
    """A MiniLM full fine-tuning step at this batch, scaled from the measured batch-32 step."""
    path = RESULTS / "gloss_overhead.json"
    if not path.exists():
        return None
    rows = json.loads(path.read_text())["rows"]
    ce = next(r for r in rows if r["objective"] == "ce" and r["tokens"] == 128)
    return ce["step_s"] * size / ce["batch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "VARIANT"), help=argparse.SUPPRESS)
    args = parse(parser, {"sizes": [16], "repeats": 1})
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1], args.repeats)))
        return
    rows = []
    for size in args.sizes:
        for variant in VARIANTS:
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.gloss_scaling",
                    "--one",
                    str(size),
                    variant,
                    "--repeats",
                    str(args.repeats),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).parents[1],
            )
            row = {"batch": size, "variant": variant, **json.loads(child.stdout.strip().splitlines()[-1])}
            if (encoder := encoder_step_s(size)) is not None:
                row["share_of_step"] = row["loss_s"] / encoder
            rows.append(row)
    report("gloss_scaling", rows, {"repeats": args.repeats}, smoke=args.smoke)


if __name__ == "__main__":
    main()
