"""Item 3: training samples per second of our loop against the Hugging Face Trainer (same model,
data, batch size and max_length) and against padding every batch to max_length as the authors'
code does, on MR (short texts) and R8; with and without length-grouped batches, and with AdamW's
per-parameter loop in place of the fused kernel.

    .venv/bin/python -m bench.input_pipeline [--steps 8 --repeats 3]
    .venv/bin/python -m bench.input_pipeline --smoke    # tiny-bert, MR, 2 steps, every arm

Needs `accelerate` for the Trainer (pip install -e '.[bench]'), in smoke runs too. Arms are
interleaved within each repeat; medians over repeats (the slowest and fastest repeat beside them),
ratios from the same run."""

import argparse
import os

import numpy as np
import torch

from bench.common import median, parse, report, seconds
from common.paths import resolve_data_dir
from trainables.config import TrialConfig
from trainables.data.corpus import load_corpus
from trainables.data.inputs import TokenInputs
from trainables.data.splits import make_splits
from trainables.data.tokens import tokenize
from trainables.model.encoder import load_backbone, load_tokenizer
from trainables.model.names import TINY, resolve_model
from trainables.training.optim import build_scheduler
from trainables.training.prepare import PreparedData
from trainables.training.trainer import Trainer

MAX_LENGTH, BATCH = 128, 32


class FixedPadding(TokenInputs):
    """Every batch padded to max_length, as the G-Loss authors' code pads."""

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        batch = super().batch(indices)
        width = MAX_LENGTH - batch["input_ids"].shape[1]
        return {key: torch.nn.functional.pad(value, (0, width)) for key, value in batch.items()}


def real_inputs(
    dataset: str, model: str, examples: int
) -> tuple[list[np.ndarray], np.ndarray, list[str], list[int]]:
    corpus = load_corpus(dataset, resolve_data_dir())
    chosen = make_splits(corpus, val_fraction=0.1, split_seed=0, train_size=examples).train
    texts = [corpus.train_texts[i] for i in chosen]
    ids = tokenize(texts, load_tokenizer(model), MAX_LENGTH)
    return ids, corpus.train_labels[chosen], texts, list(corpus.train_labels[chosen])


def our_loop(ids, labels, inputs_class, group: bool, model: str, steps: int) -> Trainer:
    inputs = inputs_class(ids[: steps * BATCH], labels[: steps * BATCH], pad_id=0)
    data = PreparedData(
        inputs, inputs, inputs, tuple(str(c) for c in range(int(labels.max()) + 1)), lambda: None
    )
    config = TrialConfig.from_dict(
        {
            "dataset": "bench",
            "fidelity": "full",
            "model": model,
            "batch_size": BATCH,
            "max_length": MAX_LENGTH,
            "group_by_length": group,
            "epochs": 100,
        }
    )
    return Trainer(config, data=data)


def with_unfused_optimizer(trainer: Trainer) -> Trainer:
    """The trainer with AdamW's per-parameter loop (PyTorch's CPU default, ours before the fused
    kernel) instead of build_optimizer's fused kernel: what the fused kernel gains, in the same run."""
    trainer.optimizer = torch.optim.AdamW(
        trainer.model.parameters(),
        lr=trainer.config.learning_rate,
        weight_decay=trainer.config.weight_decay,
        fused=False,
        foreach=False,
    )
    trainer.scheduler = build_scheduler(trainer.optimizer, trainer.config, len(trainer.batches))
    return trainer


def hf_model(model: str, classes: int):
    """A sequence classifier for the Trainer: the pre-trained model, or tiny-bert's random one."""
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    if model == TINY:
        config = load_backbone(TINY).config
        config.num_labels = classes
        return BertForSequenceClassification(config)
    return AutoModelForSequenceClassification.from_pretrained(resolve_model(model), num_labels=classes)


def hf_trainer(texts: list[str], labels: list[int], model_name: str, steps: int, folder: str, grouped: bool):
    """The Hugging Face Trainer on the same model, texts, batch size and max_length, with its own
    length grouping when `grouped` (its best setting for variable lengths); the returned function
    trains once and gives the seconds of its training loop (set-up excluded)."""
    import time

    import datasets
    from transformers import (
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    class Clock(TrainerCallback):
        def on_train_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_train_end(self, *args, **kwargs):
            self.elapsed = time.perf_counter() - self.start

    tokenizer = load_tokenizer(model_name)
    table = datasets.Dataset.from_dict({"text": texts[: steps * BATCH], "label": labels[: steps * BATCH]})
    table = table.map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH),
        batched=True,
        remove_columns=["text"],
    )
    model = hf_model(model_name, max(labels) + 1)
    arguments = TrainingArguments(
        output_dir=folder,
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        learning_rate=2e-5,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
        train_sampling_strategy="group_by_length" if grouped else "random",
    )
    clock = Clock()
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=table,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[clock],
    )

    def train() -> float:
        trainer.train()
        return clock.elapsed

    return train


def timed(run):
    """A function giving the seconds one call of `run` takes."""
    return lambda: seconds(run)


def main() -> None:
    import tempfile

    import accelerate  # the Trainer's: missing, it fails here, before any measurement
    import transformers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mr", "r8"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="minilm")
    args = parse(parser, {"datasets": ["mr"], "steps": 2, "repeats": 1, "model": TINY})
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    for dataset in args.datasets:
        ids, labels, texts, label_list = real_inputs(dataset, args.model, args.steps * BATCH)
        samples = args.steps * BATCH
        with tempfile.TemporaryDirectory() as folder:
            arms = {
                "ours, dynamic padding": timed(
                    our_loop(ids, labels, TokenInputs, False, args.model, args.steps)._train_epoch
                ),
                "ours, length-grouped": timed(
                    our_loop(ids, labels, TokenInputs, True, args.model, args.steps)._train_epoch
                ),
                "ours, length-grouped, AdamW per-parameter loop": timed(
                    with_unfused_optimizer(
                        our_loop(ids, labels, TokenInputs, True, args.model, args.steps)
                    )._train_epoch
                ),
                "fixed padding (authors)": timed(
                    our_loop(ids, labels, FixedPadding, False, args.model, args.steps)._train_epoch
                ),
                "HF Trainer": hf_trainer(texts, label_list, args.model, args.steps, folder, False),
                "HF Trainer, group_by_length": hf_trainer(
                    texts, label_list, args.model, args.steps, folder, True
                ),
            }
            times = {name: [] for name in arms}
            for run in arms.values():
                run()  # warm-up
            for _ in range(args.repeats):
                for name, run in arms.items():
                    times[name].append(run())
        tokens = np.mean([len(x) for x in ids])
        base = {name: samples / median(values) for name, values in times.items()}
        for name, rate in base.items():
            rows.append(
                {
                    "dataset": dataset,
                    "mean_tokens": round(float(tokens), 1),
                    "arm": name,
                    "samples_per_s": rate,
                    "slowest_repeat": samples / max(times[name]),
                    "fastest_repeat": samples / min(times[name]),
                    "vs_hf_trainer": rate / base["HF Trainer"],
                    "vs_hf_trainer_at_best": rate
                    / max(base["HF Trainer"], base["HF Trainer, group_by_length"]),
                    "vs_fixed_padding": rate / base["fixed padding (authors)"],
                }
            )
    report(
        "input_pipeline",
        rows,
        {
            "model": args.model,
            "steps": args.steps,
            "repeats": args.repeats,
            "batch": BATCH,
            "max_length": MAX_LENGTH,
            "transformers": transformers.__version__,
            "accelerate": accelerate.__version__,
        },
        smoke=args.smoke,
    )


if __name__ == "__main__":
    main()
