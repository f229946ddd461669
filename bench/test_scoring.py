"""Issue 24, item 1: what scoring the best epoch's test embeddings once saves against scoring them
at every epoch that becomes the best (the previous behaviour, which a checkpoint every epoch
still gives), on frozen MiniLM trials of the real datasets, in one process.

    .venv/bin/python -m bench.test_scoring                 # 20NG and R8, CE and standalone G-Loss, 20 epochs
    .venv/bin/python -m bench.test_scoring --smoke         # tiny-bert, 200 R8 documents, 2 epochs

Both arms run the same Trainer; the eager arm calls `score_best_test_embeddings` after every
epoch, as a checkpoint does. Their selected test numbers must be equal."""

import argparse
import time

import torch

from bench.common import parse, report
from trainables.config import TrialConfig
from trainables.training.trainer import Trainer

SELECTED = ("selected_test_macro_f1", "selected_test_knn_macro_f1", "selected_test_silhouette")
SMOKE = {"datasets": ["r8"], "epochs": 2, "model": "tiny-bert", "subset": 200}


def trial(dataset: str, loss: str, args: argparse.Namespace, eager: bool) -> tuple[float, dict, int]:
    """Wall seconds of one trial's epochs, its last record and how many epochs were a new best."""
    lam = {"loss_params": {"lam": 1.0}} if loss == "gloss" else {}
    subset = {"train_size": args.subset, "eval_size": args.subset // 2} if args.subset else {}
    config = {"dataset": dataset, "loss": loss, "model": args.model, "epochs": args.epochs, "patience": None}
    trainer = Trainer(TrialConfig.from_dict({**config, **lam, **subset}))
    start, record, new_best = time.perf_counter(), {}, 0
    for record in trainer.run():
        new_best += record["best_epoch"] == record["epoch"]
        if eager:
            record |= trainer.score_best_test_embeddings()
    return time.perf_counter() - start, record, new_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["20ng", "r8"])
    parser.add_argument("--losses", nargs="+", default=["ce", "gloss"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--subset", type=int)
    args = parse(parser, SMOKE)
    torch.set_num_threads(1)
    rows = []
    for dataset in args.datasets:
        for loss in args.losses:
            trial(dataset, loss, argparse.Namespace(**{**vars(args), "epochs": 1}), eager=False)  # cache
            eager_s, eager, new_best = trial(dataset, loss, args, eager=True)
            once_s, once, _ = trial(dataset, loss, args, eager=False)
            rows.append(
                {
                    "dataset": dataset,
                    "loss": loss if loss == "ce" else "gloss (standalone)",
                    "epochs": args.epochs,
                    "new_best_epochs": new_best,
                    "scored_at_each_new_best_s": eager_s,
                    "scored_once_s": once_s,
                    "ratio": once_s / eager_s,
                    "same_selected_numbers": all(eager.get(k) == once.get(k) for k in SELECTED),
                }
            )
    report("test_scoring", rows, {"settings": vars(args)}, smoke=args.smoke)


if __name__ == "__main__":
    main()
