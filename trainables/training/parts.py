"""Everything a trial trains with, built together from its config: data, model, objective,
batch order, optimiser, schedule and evaluation."""

from dataclasses import dataclass

import torch

from trainables.config import TrialConfig
from trainables.data.batches import ClassAwareBatches, RandomBatches
from trainables.losses import LossContext, Objective, build_aux_loss, loss_entry
from trainables.losses.base import balanced_class_weights
from trainables.model.classifier import Classifier, FeatureProjection
from trainables.model.encoder import TextEncoder, load_backbone
from trainables.training.evaluation import HeadEvaluation, ProbeEvaluation, evaluation_for
from trainables.training.optim import build_optimizer, build_scheduler
from trainables.training.prepare import Inputs, PreparedData, prepare_data
from trainables.training.seeding import seed_everything, seed_hash


def build_model(config: TrialConfig, data: PreparedData) -> Classifier:
    """A fine-tuned encoder (full fidelity) or a projection over cached embeddings (frozen)."""
    if config.fidelity == "frozen":
        body = FeatureProjection(data.train.features.shape[1], config.projection_dim, config.dropout)
    else:
        body = TextEncoder(load_backbone(config.model, seed=config.seed), config.pooling)
    return Classifier(body, data.num_classes, config.dropout)


def batch_order(config: TrialConfig, inputs: Inputs) -> RandomBatches | ClassAwareBatches:
    """The study's batch sampler, the same for every loss of a comparison: class-aware batches
    when asked, otherwise random batches, at full fidelity grouped by length unless switched off
    (less padding, the same examples each epoch; bench/input_pipeline.py measures the gain)."""
    if config.batch_sampler == "class_aware":
        return ClassAwareBatches(inputs.labels, config.batch_size, config.per_class, config.seed)
    lengths = inputs.lengths() if config.groups_by_length else None
    return RandomBatches(inputs.labels, config.batch_size, config.seed, lengths)


def class_weights(config: TrialConfig, counts: tuple[int, ...]) -> torch.Tensor | None:
    """Balanced CE weights N / (C * n_c) when asked, or None."""
    return balanced_class_weights(counts).float() if config.class_weighting == "balanced" else None


@dataclass(frozen=True)
class Parts:
    """What one trial trains with."""

    data: PreparedData
    model: Classifier
    objective: Objective
    batches: RandomBatches | ClassAwareBatches
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    evaluation: HeadEvaluation | ProbeEvaluation


def build_parts(config: TrialConfig, device: torch.device, data: PreparedData | None = None) -> Parts:
    """The trial's parts on `device`, initialised from its seed (`data` when already prepared)."""
    seed_everything(seed_hash(config.seed, "init"))
    data = data or prepare_data(config, device)
    model = build_model(config, data).to(device)
    if config.compile:
        model.compile(dynamic=True)  # in place: state_dict keys (checkpoints) stay unchanged
    context = LossContext(data.num_classes, data.class_counts, data.pretrained)
    aux = build_aux_loss(config.loss, config.loss_params, context)
    objective = Objective(aux, config.loss_params.lam, class_weights(config, data.class_counts)).to(device)
    if not loss_entry(config.loss).needs.trains_body:  # the control row: only the head learns
        model.body.requires_grad_(False)
    batches = batch_order(config, data.train)
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], config)
    scheduler = build_scheduler(optimizer, config, len(batches))
    return Parts(data, model, objective, batches, optimizer, scheduler, evaluation_for(config))
