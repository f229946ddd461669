"""Issue 20: what grouping batches by length does to their classes, at the `paper` preset's batch.

    .venv/bin/python -m bench.length_grouping            # all five datasets, 3 epochs
    .venv/bin/python -m bench.length_grouping --smoke    # R8, 300 examples, 1 epoch

No training. Each dataset's training split (10% held out as the trials hold it out), tokenized
with the bert-base-uncased vocabulary at 128 tokens, is batched as full-fidelity trials batch it
(trainables.training.parts.batch_order, batch 128): random batches, grouped by length or not.
Per sampler, averaged over the epochs: classes per batch, the share of examples whose batch holds
another example of their class, and the share of the split that one grouping window holds.
"""

import argparse

import numpy as np

from bench.common import parse, report
from common.paths import resolve_data_dir
from trainables.config import TrialConfig
from trainables.data.batches import GROUP_WINDOW
from trainables.data.corpus import load_corpus
from trainables.data.inputs import TokenInputs
from trainables.data.splits import make_splits
from trainables.data.tokens import tokenize
from trainables.model.encoder import load_tokenizer
from trainables.training.parts import batch_order

BATCH, MAX_LENGTH = 128, 128
ALL_DATASETS = ("mr", "r8", "r52", "ohsumed", "20ng")


def split_inputs(dataset: str, model: str, train_size: int | None) -> TokenInputs:
    """The training split a trial trains on, as token ids."""
    corpus = load_corpus(dataset, resolve_data_dir())
    chosen = make_splits(corpus, val_fraction=0.1, split_seed=0, train_size=train_size).train
    ids = tokenize([corpus.train_texts[i] for i in chosen], load_tokenizer(model), MAX_LENGTH)
    return TokenInputs(ids, corpus.train_labels[chosen], pad_id=0)


def structure(dataset: str, inputs: TokenInputs, grouped: bool, epochs: int) -> dict:
    config = TrialConfig(dataset=dataset, fidelity="full", batch_size=BATCH, group_by_length=grouped)
    batches = batch_order(config, inputs)
    classes, paired = [], 0
    for epoch in range(1, epochs + 1):
        for batch in batches.epoch(epoch):
            counts = np.bincount(inputs.labels[batch])
            classes.append(int((counts > 0).sum()))
            paired += int(counts[counts > 1].sum())
    return {
        "dataset": dataset,
        "sampler": "random, grouped by length" if grouped else "random",
        "examples": len(inputs),
        "window_share": min(1.0, BATCH * GROUP_WINDOW / len(inputs)),
        "classes_per_batch": float(np.mean(classes)),
        "share_with_partner": paired / (epochs * len(inputs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(ALL_DATASETS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="minilm", help="its tokenizer: the bert-base-uncased vocabulary")
    parser.add_argument("--train-size", type=int, default=None)
    args = parse(parser, {"datasets": ["r8"], "epochs": 1, "train_size": 300})
    rows = []
    for dataset in args.datasets:
        inputs = split_inputs(dataset, args.model, args.train_size)
        rows += [structure(dataset, inputs, grouped, args.epochs) for grouped in (False, True)]
    notes = {"batch": BATCH, "max_length": MAX_LENGTH, "group_window_batches": GROUP_WINDOW}
    report("length_grouping", rows, {**notes, "epochs": args.epochs}, smoke=args.smoke)


if __name__ == "__main__":
    main()
