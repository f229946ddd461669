"""What a planned study costs before it starts: per phase and in total, trials, the epochs they
may run (each trial at its epoch bound), GPU-hours on a named GPU, and the checkpoint bytes
written and held at the peak. The arithmetic is `bench.gpu_hours`'s, on the same counted work:

- tokens per epoch: each dataset's real training split (90%), its validation and test splits,
  padded as the Trainer batches them (length-grouped training batches, length-sorted evaluation
  batches of twice the batch size), tokenised with the model's vocabulary (bert-base-uncased's
  WordPiece through MiniLM's tokenizer, the same vocabulary, as no download is needed);
- FLOPs: 6 x parameters per trained token, 2 x per evaluated token (Kaplan et al.), the test split
  counted every epoch: an upper bound, as it is evaluated only at epochs that become the best;
- throughput: an H100 SXM's 989 dense bf16 TFLOP/s at an assumed MFU of 0.35;
- checkpoints: a trainer state is fp32 weights and Adam's two moments, 12 bytes a parameter
  (1.218 GiB for bert-base, as bench/checkpoint_bytes.py measured; 4 bytes weights-only), written
  at the policy's epochs: `every_minutes` at the estimated epoch time, `max_share` at the write
  time bench/checkpoint_time.py measured on object storage (WRITE_S_PER_GIB); the last epoch's
  left out where finished trials delete their state; each live trial holds at most keep + 1.
Only full fine-tuning is estimated: a frozen trial trains a head on cached embeddings, on CPUs."""

from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

from trainables.checkpoint import WRITE_S_PER_GIB, Cadence

GPU, PEAK_TFLOPS, ASSUMED_MFU = "H100 SXM", 989.0, 0.35
STATE_BYTES_PER_PARAMETER = 12  # fp32 weights + Adam's first and second moments
WEIGHT_BYTES_PER_PARAMETER = 4  # a weights-only state (checkpoint.optimizer: false)


@dataclass(frozen=True)
class Cost:
    """The bill of some trials at their epoch bound."""

    trials: int = 0
    epochs: int = 0
    gpu_hours: float = 0.0
    checkpoint_written_bytes: int = 0
    checkpoint_peak_bytes: int = 0

    def __add__(self, other: "Cost") -> "Cost":
        """Two phases one after the other: their sums, and the larger peak."""
        return Cost(
            self.trials + other.trials,
            self.epochs + other.epochs,
            self.gpu_hours + other.gpu_hours,
            self.checkpoint_written_bytes + other.checkpoint_written_bytes,
            max(self.checkpoint_peak_bytes, other.checkpoint_peak_bytes),
        )

    def summary(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line for the dry run."""
        return (
            f"{self.trials} trials, at most {self.epochs:,} epochs, {self.gpu_hours:.1f} GPU-hours on "
            f"one {GPU}, checkpoints {self.checkpoint_written_bytes / 2**40:.2f} TiB written, "
            f"{self.checkpoint_peak_bytes / 2**30:.1f} GiB held at the peak"
        )


@cache
def parameters(model: str) -> int:
    """Parameters of the encoder: bert-base from BertConfig's defaults (no pooler), else ours."""
    from transformers import BertConfig, BertModel

    from trainables.model.encoder import load_backbone

    encoder = (
        BertModel(BertConfig(), add_pooling_layer=False) if model == "bert-base" else load_backbone(model, 0)
    )
    return sum(p.numel() for p in encoder.parameters())


@cache
def padded_tokens(
    dataset: str,
    max_length: int,
    batch_size: int,
    model: str = "bert-base",
    splits: tuple[float, int, int | None, int | None] = (0.1, 0, None, None),
) -> dict[str, int]:
    """Padded tokens in one epoch: training (length-grouped batches) and evaluation (validation
    and test in length-sorted batches of twice the batch size), as the Trainer batches them, on
    the splits a trial makes (`splits`: val_fraction, split_seed, train_size, eval_size)."""
    from common.paths import resolve_data_dir
    from trainables.data.batches import RandomBatches, length_sorted_chunks
    from trainables.data.corpus import load_corpus
    from trainables.data.splits import make_splits
    from trainables.data.tokens import tokenize
    from trainables.model.encoder import load_tokenizer

    corpus = load_corpus(dataset, resolve_data_dir())
    val_fraction, split_seed, train_size, eval_size = splits
    indices = make_splits(
        corpus, val_fraction=val_fraction, split_seed=split_seed, train_size=train_size, eval_size=eval_size
    )
    tokenizer = load_tokenizer("minilm" if model == "bert-base" else model)
    lengths = {
        name: np.array([len(ids) for ids in tokenize(texts, tokenizer, max_length)])
        for name, texts in (
            ("train", [corpus.train_texts[i] for i in indices.train]),
            ("val", [corpus.train_texts[i] for i in indices.val]),
            ("test", [corpus.test_texts[i] for i in indices.test]),
        )
    }
    batches = RandomBatches(np.zeros(len(lengths["train"])), batch_size, 0, lengths["train"]).epoch(1)
    train = sum(len(b) * int(lengths["train"][b].max()) for b in batches)
    evaluated = {}
    for name in ("val", "test"):
        chunks = length_sorted_chunks(lengths[name], 2 * batch_size)
        evaluated[name] = sum(len(c) * int(lengths[name][c].max()) for c in chunks)
    evaluation = evaluated["val"] + evaluated["test"]
    return {"train": train, "eval": evaluation, "test": evaluated["test"], "documents": len(lengths["train"])}


def epoch_flops(tokens: dict, size: int) -> float:
    """Training and evaluation FLOPs of one epoch of a model of `size` parameters."""
    return size * (6 * tokens["train"] + 2 * tokens["eval"])


def throughput(mfu: float = ASSUMED_MFU) -> float:
    """FLOP/s of the named GPU at `mfu`."""
    return mfu * PEAK_TFLOPS * 1e12


def state_bytes(config, size: int) -> int:
    """Bytes of one trainer state of a model of `size` parameters under the trial's policy."""
    per_parameter = STATE_BYTES_PER_PARAMETER if config.checkpoint_optimizer else WEIGHT_BYTES_PER_PARAMETER
    return per_parameter * size


def states_written(config, epoch_s: float, write_s: float) -> int:
    """Trainer states one trial writes over its epoch bound, by the trainable's own cadence run on
    a simulated clock: epochs of `epoch_s`, states that take `write_s` to write (as the trainable
    assumes before it measures one); the last epoch writes one unless finished trials delete
    their state."""
    now = [0.0]
    cadence = Cadence(
        config.checkpoint_every_epochs,
        config.checkpoint_every_minutes,
        config.checkpoint_max_share,
        first_cost=write_s,
        clock=lambda: now[0],
    )
    states = 0
    for epoch in range(1, config.epochs + 1):
        now[0] += epoch_s
        last = epoch == config.epochs
        if (config.checkpoint_final_state and last) or (not last and cadence.due(epoch)):
            now[0] += write_s
            cadence.saved(write_s)
            states += 1
    return states


def phase_cost(phase, live: int, keep: int, rate: float) -> Cost:
    """The bill of one phase's trials at their epoch bound; `live` trials run at once."""
    total, peak_per_trial = Cost(), 0
    for group in phase.groups:
        config = group.config
        size = parameters(config.model)
        splits = (config.val_fraction, config.split_seed, config.train_size, config.eval_size)
        tokens = padded_tokens(config.dataset, config.max_length, config.batch_size, config.model, splits)
        epoch_s = epoch_flops(tokens, size) / rate
        state = state_bytes(config, size)
        written = states_written(config, epoch_s, state / 2**30 * WRITE_S_PER_GIB)
        peak_per_trial = max(peak_per_trial, min(keep + 1, written) * state)
        total = total + Cost(
            group.trials,
            group.trials * config.epochs,
            group.trials * config.epochs * epoch_s / 3600,
            group.trials * written * state,
        )
    held = live * peak_per_trial
    return Cost(total.trials, total.epochs, total.gpu_hours, total.checkpoint_written_bytes, held)


def live_trials(spec, phase, max_concurrent: int | None) -> int:
    """How many of a phase's trials may hold checkpoints at once: --max-concurrent, else the
    spec's max_concurrent, else all, and in a search at most `search.max_concurrent` per group."""
    live = max_concurrent or spec.max_concurrent or phase.trials
    if phase.name == "search" and spec.search.max_concurrent:
        live = min(live, len(phase.groups) * spec.search.max_concurrent)
    return min(live, phase.trials)


def study_cost(spec, plan, max_concurrent: int | None = None) -> dict[str, Cost] | str:
    """Each phase's bill and the total (key 'total'), or why there is none: below full
    fine-tuning, or a model whose weights or tokenizer are not here to count with."""
    if spec.fidelity != "full":
        return "not estimated below full fine-tuning (frozen trials train heads on cached embeddings)"
    try:
        costs = {
            phase.name: phase_cost(
                phase, live_trials(spec, phase, max_concurrent), spec.checkpoint.keep, throughput()
            )
            for phase in plan
        }
    except OSError:
        return (
            f"not estimated: the model {spec.model} is not available here to count its parameters and tokens"
        )
    costs["total"] = sum(costs.values(), Cost())
    return costs
