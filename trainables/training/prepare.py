"""Turn a TrialConfig into model inputs for train, validation and test, at either fidelity."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.paths import resolve_data_dir
from trainables.config import TrialConfig
from trainables.data.corpus import Corpus, load_corpus
from trainables.data.inputs import FeatureInputs, TokenInputs
from trainables.data.splits import SplitIndices, make_splits
from trainables.model.embedding_cache import pooled_embeddings
from trainables.model.encoder import load_tokenizer

Inputs = TokenInputs | FeatureInputs


@dataclass
class PreparedData:
    """Inputs of each split plus the facts losses may need (class counts, pre-trained embeddings)."""

    train: Inputs
    val: Inputs
    test: Inputs
    label_names: tuple[str, ...]
    pretrained: Callable[[], tuple[torch.Tensor, torch.Tensor]]

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def class_counts(self) -> tuple[int, ...]:
        return tuple(int(c) for c in np.bincount(self.train.labels, minlength=self.num_classes))


def prepare_data(config: TrialConfig, device: torch.device) -> PreparedData:
    """Load the corpus, split it, and build token or cached-embedding inputs."""
    corpus = load_corpus(config.dataset, resolve_data_dir(config.data_dir))
    splits = make_splits(
        corpus,
        val_fraction=config.val_fraction,
        split_seed=config.split_seed,
        train_size=config.train_size,
        eval_size=config.eval_size,
    )
    if config.fidelity == "frozen":
        return _frozen_inputs(config, corpus, splits, device)
    return _token_inputs(config, corpus, splits, device)


def _embeddings(
    config: TrialConfig, texts: tuple[str, ...] | list[str], label: str, device: torch.device
) -> torch.Tensor:
    """Pooled pre-trained embeddings of `texts`, through the on-disk cache."""
    return torch.from_numpy(
        pooled_embeddings(
            config.model,
            texts,
            max_length=config.max_length,
            pooling=config.pooling,
            device=device,
            label=label,
        )
    )


def _frozen_inputs(
    config: TrialConfig, corpus: Corpus, splits: SplitIndices, device: torch.device
) -> PreparedData:
    """Embed only the documents a run uses; without subsets that is each whole split, whose
    cache every whole-dataset trial shares."""
    name = Path(corpus.name).name
    from_train = np.union1d(splits.train, splits.val)
    train_features = _embeddings(config, [corpus.train_texts[i] for i in from_train], f"{name}-train", device)
    test_features = _embeddings(config, [corpus.test_texts[i] for i in splits.test], f"{name}-test", device)
    position = {int(doc): row for row, doc in enumerate(from_train)}

    def rows(indices: np.ndarray) -> torch.Tensor:
        return train_features[[position[int(i)] for i in indices]]

    train = FeatureInputs(rows(splits.train), corpus.train_labels[splits.train])
    return PreparedData(
        train=train,
        val=FeatureInputs(rows(splits.val), corpus.train_labels[splits.val]),
        test=FeatureInputs(test_features, corpus.test_labels[splits.test]),
        label_names=corpus.label_names,
        pretrained=lambda: (train.features, torch.from_numpy(train.labels)),
    )


def _token_inputs(
    config: TrialConfig, corpus: Corpus, splits: SplitIndices, device: torch.device
) -> PreparedData:
    from trainables.data.tokens import tokenize

    tokenizer = load_tokenizer(config.model)
    train_ids = tokenize(corpus.train_texts, tokenizer, config.max_length)
    test_ids = tokenize(corpus.test_texts, tokenizer, config.max_length)
    pad = tokenizer.pad_token_id

    def take(ids: list[np.ndarray], labels: np.ndarray, indices: np.ndarray) -> TokenInputs:
        return TokenInputs([ids[i] for i in indices], labels[indices], pad)

    train = take(train_ids, corpus.train_labels, splits.train)

    def pretrained() -> tuple[torch.Tensor, torch.Tensor]:
        texts = [corpus.train_texts[i] for i in splits.train]
        label = f"{Path(corpus.name).name}-train-subset"
        return _embeddings(config, texts, label, device), torch.from_numpy(train.labels)

    return PreparedData(
        train=train,
        val=take(train_ids, corpus.train_labels, splits.val),
        test=take(test_ids, corpus.test_labels, splits.test),
        label_names=corpus.label_names,
        pretrained=pretrained,
    )
