"""The training loop: epochs of optimisation, evaluation and model selection, yielded as flat
records; its whole state fits in one checkpoint taken between epochs."""

import math
import resource
import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import torch

from common.records import Status
from trainables.config import TrialConfig
from trainables.data.batches import length_sorted_chunks
from trainables.training.device import Placement, place
from trainables.training.metrics import embedding_metrics
from trainables.training.parts import build_parts
from trainables.training.prepare import Inputs, PreparedData
from trainables.training.seeding import seed_everything, seed_hash
from trainables.training.selection import BestEpoch


class Diverged(Exception):
    """The loss or its gradient stopped being finite."""


class Trainer:
    """Train one configuration; iterate `run()` for one record per epoch until it finishes.

    `placement` (device and precision) defaults to the config's, resolved here; the Ray trainable
    passes the one it resolved from the trial's GPUs. fp16 scales the loss (GradScaler)."""

    def __init__(
        self, config: TrialConfig, data: PreparedData | None = None, placement: Placement | None = None
    ) -> None:
        self.config = config
        self.placement = placement or place(config.device, config.precision)
        self.device = self.placement.device
        self.autocast_dtype = self.placement.autocast_dtype
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.placement.precision == "fp16")
        self.skipped_steps = 0
        parts = build_parts(config, self.device, data)
        self.data, self.model, self.objective = parts.data, parts.model, parts.objective
        self.batches, self.optimizer, self.scheduler = parts.batches, parts.optimizer, parts.scheduler
        self.evaluation = parts.evaluation
        self.best = BestEpoch(config.patience)
        self.best_test_embeddings: torch.Tensor | None = None
        self.best_test_embeddings_candidate: torch.Tensor | None = None  # this epoch's, if it is best
        self.unscored_test_embeddings: torch.Tensor | None = None  # the best epoch's, kNN/silhouette due
        self.epoch = 0
        self.train_time = 0.0
        self.status = Status.RUNNING

    @property
    def finished(self) -> bool:
        return self.status != Status.RUNNING

    def run(self) -> Iterator[dict]:
        """One record per epoch until the budget, early stopping or divergence ends training."""
        while not self.finished:
            yield self.run_epoch()

    def run_epoch(self) -> dict:
        """Train one epoch, evaluate, update model selection; the epoch's flat record."""
        self.epoch += 1
        seed_everything(seed_hash(self.config.seed, self.epoch))
        start = time.perf_counter()
        try:
            record = self._train_epoch()
        except Diverged as reason:
            self.status = Status.DIVERGED
            return {
                "epoch": self.epoch,
                "status": self.status.value,
                "diverged_reason": str(reason),
                **self.placement.record(),
                **self._selection_fields(),
            }
        record.update(self._evaluate())
        self._select(record)
        record.update(
            epoch=self.epoch,
            epoch_time_s=time.perf_counter() - start,
            status=self.status.value,
            train_time_s=self.train_time,
            peak_memory_mb=self._peak_memory_mb(),
            **self.placement.record(),
        )
        if self.finished:
            self.score_best_test_embeddings()
            record.update(self.evaluation.finish(self.model, self._embed_split))
        record.update(self._selection_fields())
        return record

    def score_best_test_embeddings(self) -> dict:
        """The best epoch's test kNN macro-F1 and silhouette (O(n^2) in the test split), computed
        once the epoch can no longer be superseded before they are read: when training ends or
        before a checkpoint (which holds the best record, not the embeddings). The same numbers as
        scoring at the epoch itself, without paying for every epoch that is best for a while.
        Returns the selection fields, updated."""
        if self.unscored_test_embeddings is not None:
            labels, embeddings = self.data.test.labels, self.unscored_test_embeddings
            self.best.record.update(embedding_metrics("test", labels, embeddings, self.config.silhouette))
            self.unscored_test_embeddings = None
        return self._selection_fields()

    def _forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        ):
            return self.model(batch)

    def _train_epoch(self) -> dict:
        self.model.train()
        sums: dict[str, float] = defaultdict(float)
        steps = samples = 0
        self.skipped_steps = 0
        start = time.perf_counter()
        for step, indices in enumerate(self.batches.epoch(self.epoch)):
            batch = self._to_device(self.data.train.batch(indices))
            labels = torch.from_numpy(self.data.train.labels[indices]).to(self.device)
            embeddings, logits = self._forward(batch)
            if self.config.encoder_passes == 2:
                embeddings, _ = self._forward(batch)
            loss, terms = self.objective(embeddings, logits, labels)
            self._optimise(loss, step)
            for key, value in {"loss": float(loss.detach()), **terms}.items():
                sums[key] += value
            steps, samples = steps + 1, samples + len(indices)
        elapsed = time.perf_counter() - start
        self.train_time += elapsed
        record = {f"train_{key}": value / max(steps, 1) for key, value in sums.items()}
        record.update(
            samples_per_s=samples / elapsed,
            lr=self.scheduler.get_last_lr()[0],
            skipped_steps=self.skipped_steps,
        )
        return record

    def _optimise(self, loss: torch.Tensor, step: int) -> None:
        """One step. A non-finite loss is divergence. In fp16, non-finite gradients mean the loss
        scale overflowed: GradScaler skips the step and halves the scale, which is normal (counted
        in `skipped_steps`); only a scale below 1, where even unscaled gradients overflow, is
        divergence. Without the scaler any non-finite gradient norm is divergence."""
        where = f"step {step + 1} of epoch {self.epoch}"
        if not torch.isfinite(loss):
            raise Diverged(f"non-finite loss ({float(loss.detach())}) at {where}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.config.max_grad_norm or float("inf")
        )
        if not self.scaler.is_enabled() and not torch.isfinite(norm):
            raise Diverged(f"non-finite gradient norm at {where}")
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scaler.get_scale() < scale:  # GradScaler found inf/NaN gradients and skipped the step
            self.skipped_steps += 1
            if self.scaler.get_scale() < 1.0:
                raise Diverged(f"fp16 gradients overflow even unscaled (loss scale below 1) at {where}")
            return
        self.scheduler.step()

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch on the trial's device; to a GPU from pinned memory, so the copy runs while
        the GPU still works on the previous step (a copy from pageable memory waits for it)."""
        if self.device.type != "cuda":
            return batch
        return {key: value.pin_memory().to(self.device, non_blocking=True) for key, value in batch.items()}

    @torch.inference_mode()
    def embed(self, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and logits of a whole split (CPU, float32), in length-sorted batches."""
        self.model.eval()
        chunks = length_sorted_chunks(inputs.lengths(), 2 * self.config.batch_size)
        embeddings, logits = [], []
        for chunk in chunks:
            emb, out = self._forward(self._to_device(inputs.batch(chunk)))
            embeddings.append(emb.float().cpu())
            logits.append(out.float().cpu())
        inverse = torch.from_numpy(np.argsort(np.concatenate(chunks)))
        return torch.cat(embeddings)[inverse], torch.cat(logits)[inverse]

    def _evaluate(self) -> dict:
        """Validation metrics every epoch; the test split is embedded only at an epoch that
        validation makes the new best, the only epochs whose test metrics are ever reported (the
        same numbers, at a fraction of the cost), or every epoch with `test_curves` (test curves).
        The test embeddings' own metrics, kNN and silhouette, wait for
        `score_best_test_embeddings`."""
        record = {"silhouette_metric": self.config.silhouette, "probe": self.config.probe}
        embeddings, logits = self.embed(self.data.val)
        record.update(self.evaluation.split_metrics("val", self.data.val.labels, logits))
        record.update(embedding_metrics("val", self.data.val.labels, embeddings, self.config.silhouette))
        best = self.best.improves(record.get(self.config.monitor_metric, math.nan))
        if best or self.config.test_curves:
            embeddings, logits = self.embed(self.data.test)
            record.update(self.evaluation.split_metrics("test", self.data.test.labels, logits))
            if best:
                self.best_test_embeddings_candidate = embeddings
        return record

    def _select(self, record: dict) -> None:
        if self.best.update(self.epoch, record[self.config.monitor_metric], record):
            self.unscored_test_embeddings = self.best_test_embeddings_candidate
            self.evaluation.on_new_best(self.model)
            if self.config.save_embeddings:
                self.best_test_embeddings = self.best_test_embeddings_candidate.half()
        if self.best.stop:
            self.status = Status.EARLY_STOPPED
        elif self.epoch >= self.config.epochs:
            self.status = Status.COMPLETED

    def _embed_split(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        """A named split's embeddings under the current weights, with its labels."""
        inputs = getattr(self.data, split)
        return self.embed(inputs)[0], inputs.labels

    def _selection_fields(self) -> dict:
        """The best epoch so far (its score NaN until one is scored) and the test metrics chosen by
        validation (the probe's when standalone training has finished)."""
        source, prefix = self.evaluation.selected(self.best.record), self.evaluation.selected_prefix
        fields = {
            "best_epoch": self.best.epoch,
            "best_score": self.best.score if self.best.epoch else math.nan,
            "monitor": self.config.monitor_metric,
        }
        for metric in ("accuracy", "macro_f1"):
            if (value := source.get(prefix + metric)) is not None:
                fields[f"selected_test_{metric}"] = value
        for metric in ("knn_macro_f1", "silhouette"):  # of the embeddings, standalone or not
            if (value := self.best.record.get(f"test_{metric}")) is not None:
                fields[f"selected_test_{metric}"] = value
        return fields

    def _peak_memory_mb(self) -> float:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
            torch.cuda.reset_peak_memory_stats(self.device)
            return peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def state_bytes(self, optimizer: bool = True) -> int:
        """Bytes of a state: the weights, and Adam's two moments of each trained one."""
        weights = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        trained = sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)
        return weights + (2 * trained if optimizer else 0)

    def state_dict(self, optimizer: bool = True) -> dict:
        """Everything needed to continue after this epoch; RNG state derives from (seed, epoch).
        The best epoch's test metrics are scored first, so the state holds them. Without
        `optimizer`, Adam's moments (two thirds of a fine-tuned encoder's state) are left out and
        a trainer restored from it starts them afresh."""
        self.score_best_test_embeddings()
        return {
            "epoch": self.epoch,
            "status": self.status.value,  # plain data: checkpoints load with weights_only
            "train_time": self.train_time,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if optimizer else None,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": self.best.state_dict(),
            **self.evaluation.state_dict(),
            "best_test_embeddings": self.best_test_embeddings,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state taken by `state_dict`."""
        self.epoch, self.status, self.train_time = (
            state["epoch"],
            Status(state["status"]),
            state["train_time"],
        )
        self.model.load_state_dict(state["model"])
        if state["optimizer"] is not None:  # None: a weights-only state, the moments start afresh
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # empty when the scaler is off, absent in older checkpoints
            self.scaler.load_state_dict(state["scaler"])
        self.best.load_state_dict(state["best"])
        self.evaluation.load_state_dict(state)
        self.best_test_embeddings = state["best_test_embeddings"]
