"""Issue 10: what pair losses lose with random batches at the paper's batch size (128).

    .venv/bin/python -m bench.pair_batches [--datasets r8 r52 --seeds 0 1]
    .venv/bin/python -m bench.pair_batches --smoke    # R8, 1 seed, 3 epochs

Two measurements, both at batch 128:
- structure, on all five datasets' real training splits, no training: the share of examples
  whose batch holds another example of their class (a supervised pair loss has nothing to pull
  an example towards without one), and the classes per batch, under random batches and under
  class-aware batches (4 per class), over one epoch of each sampler;
- effect, trained at frozen MiniLM fidelity (Adam, lr 3e-3 under the trial default schedule,
  linear decay after a 6% warm-up, not `paper-frozen`'s step schedule; up to 60 epochs,
  patience 5): the test macro-F1 of the pair-loss rows (scl+ce integrated; triplet and
  cos_sim standalone with margin 5, then the linear probe) and of CE as a control, under each
  sampler, on the datasets and seeds given. Ratio: class-aware over random, per row.
"""

import argparse

import numpy as np

from bench.common import parse, report
from common.paths import resolve_data_dir
from trainables.config import TrialConfig
from trainables.data.batches import ClassAwareBatches, RandomBatches
from trainables.data.corpus import load_corpus
from trainables.data.splits import make_splits
from trainables.training.trainer import Trainer

BATCH = 128
ALL_DATASETS = ("mr", "r8", "r52", "ohsumed", "20ng")
ROWS = {
    "ce": ("ce", {}),
    "scl+ce": ("supcon", {"lam": 0.9, "temperature": 0.1}),
    "triplet": ("triplet", {"lam": 1.0, "margin": 5.0}),
    "cos_sim": ("cosine_mse", {"lam": 1.0}),
}
SAMPLERS = ("random", "class_aware")


def structure(dataset: str) -> list[dict]:
    """Per sampler: the share of examples with a same-class partner in their batch, classes per batch."""
    corpus = load_corpus(dataset, resolve_data_dir())
    labels = corpus.train_labels[make_splits(corpus, val_fraction=0.1, split_seed=0).train]
    samplers = {
        "random": RandomBatches(labels, BATCH, 0),
        "class_aware": ClassAwareBatches(labels, BATCH, 4, 0),
    }
    rows = []
    for name, sampler in samplers.items():
        paired, examples, classes = 0, 0, []
        for batch in sampler.epoch(1):
            counts = np.bincount(labels[batch])
            paired += int(counts[counts > 1].sum())
            examples += len(batch)
            classes.append(int((counts > 0).sum()))
        rows.append(
            {
                "table": "structure",
                "dataset": dataset,
                "sampler": name,
                "classes": int(labels.max()) + 1,
                "share_with_partner": paired / examples,
                "classes_per_batch": float(np.mean(classes)),
            }
        )
    return rows


def trained(dataset: str, row: str, sampler: str, seed: int, args: argparse.Namespace) -> float:
    """Test macro-F1 at the best validation epoch (the probe's for standalone rows)."""
    loss, params = ROWS[row]
    config = TrialConfig.from_dict(
        {
            "dataset": dataset,
            "loss": loss,
            "method": row,
            "loss_params": params,
            "seed": seed,
            "fidelity": "frozen",
            "model": args.model,
            "batch_size": BATCH,
            "batch_sampler": sampler,
            "optimizer": "adam",
            "lr": 3e-3,
            "epochs": args.epochs,
            "patience": 5,
            "class_weighting": "balanced",
            "train_size": args.train_size,
        }
    )
    return float(list(Trainer(config).run())[-1]["selected_test_macro_f1"])


def effect(args: argparse.Namespace) -> list[dict]:
    rows = []
    for dataset in args.datasets:
        for row in ROWS:
            scores = {
                sampler: [trained(dataset, row, sampler, seed, args) for seed in args.seeds]
                for sampler in SAMPLERS
            }
            means = {sampler: float(np.mean(values)) for sampler, values in scores.items()}
            print(dataset, row, means)
            rows.append(
                {
                    "table": "effect",
                    "dataset": dataset,
                    "row": row,
                    "random_f1": means["random"],
                    "class_aware_f1": means["class_aware"],
                    "class_aware_minus_random": means["class_aware"] - means["random"],
                    "per_seed": scores,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["r8", "r52"], help="trained on")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--train-size", type=int, default=None)
    args = parse(
        parser, {"datasets": ["r8"], "seeds": [0], "epochs": 3, "model": "tiny-bert", "train_size": 300}
    )
    datasets = args.datasets if args.smoke else ALL_DATASETS
    rows = [row for dataset in datasets for row in structure(dataset)] + effect(args)
    report("pair_batches", rows, {"batch": BATCH, "lr": 3e-3, "seeds": args.seeds}, smoke=args.smoke)


if __name__ == "__main__":
    main()
