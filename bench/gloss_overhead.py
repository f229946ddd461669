"""Item 1: training-step time of integrated G-Loss against CE alone, and against the authors'
scheme of two encoder passes per step: MiniLM, full fine-tuning, batch 32, 64 and 128 tokens.

    .venv/bin/python -m bench.gloss_overhead [--steps 5 --repeats 3]
    .venv/bin/python -m bench.gloss_overhead --smoke    # tiny-bert, batch 8, 16 tokens, 2 steps

Each measurement times `Trainer._train_epoch` (the product's own step) over `steps` batches of
random token ids of exactly the given length; configurations are interleaved within each repeat
and the median over repeats is reported, with ratios to CE from the same run."""

import argparse

import numpy as np
import torch

from bench.common import median, parse, report, seconds
from trainables.config import TrialConfig
from trainables.data.inputs import TokenInputs
from trainables.training.prepare import PreparedData
from trainables.training.trainer import Trainer

VARIANTS = {
    "ce": {"loss": "ce"},
    "gloss": {"loss": "gloss", "loss_params": {"lam": 0.7}},
    "gloss, 2 passes": {"loss": "gloss", "loss_params": {"lam": 0.7}, "encoder_passes": 2},
}


def synthetic(tokens: int, examples: int, classes: int = 8, seed: int = 0) -> PreparedData:
    """Token ids of exactly `tokens` per example, balanced labels: a fixed cost per step."""
    rng = np.random.default_rng(seed)
    ids = [np.concatenate([[101], rng.integers(1000, 29000, tokens - 2), [102]]) for _ in range(examples)]
    inputs = TokenInputs(ids, np.arange(examples) % classes, pad_id=0)
    return PreparedData(inputs, inputs, inputs, tuple(str(c) for c in range(classes)), lambda: None)


def trainer(variant: dict, model: str, tokens: int, batch: int, steps: int) -> Trainer:
    config = TrialConfig.from_dict(
        {
            "dataset": "synthetic",
            "fidelity": "full",
            "model": model,
            "batch_size": batch,
            "max_length": tokens,
            "batch_sampler": "random",
            "epochs": 100,
            **variant,
        }
    )
    return Trainer(config, data=synthetic(tokens, batch * steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--model", default="minilm")
    args = parse(parser, {"steps": 2, "repeats": 1, "batch": 8, "tokens": [16], "model": "tiny-bert"})
    torch.set_num_threads(torch.get_num_threads())
    rows = []
    for tokens in args.tokens:
        trainers = {
            name: trainer(v, args.model, tokens, args.batch, args.steps) for name, v in VARIANTS.items()
        }
        for t in trainers.values():
            t._train_epoch()  # warm-up: allocator, kernels, first-step optimiser state
        times = {name: [] for name in trainers}
        for _ in range(args.repeats):
            for name, t in trainers.items():
                times[name].append(seconds(t._train_epoch) / args.steps)
        base = median(times["ce"])
        for name, values in times.items():
            rows.append(
                {
                    "tokens": tokens,
                    "batch": args.batch,
                    "objective": name,
                    "step_s": median(values),
                    "ratio_to_ce": median(values) / base,
                }
            )
    report(
        "gloss_overhead",
        rows,
        {"model": args.model, "steps": args.steps, "repeats": args.repeats},
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
