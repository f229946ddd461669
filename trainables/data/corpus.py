"""A dataset's train and test splits with label ids, found by name in the data directory."""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import DataError, suggest
from trainables.data.reader import SUFFIXES, read_split
from trainables.data.registry import KNOWN_DATASETS


@dataclass(frozen=True)
class Corpus:
    """Texts and integer labels of both splits; label ids index the sorted training label set."""

    name: str
    label_names: tuple[str, ...]
    train_texts: tuple[str, ...]
    train_labels: np.ndarray
    test_texts: tuple[str, ...]
    test_labels: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def dataset_folder(name: str, data_dir: Path) -> Path:
    """The folder of dataset `name`: <data_dir>/<name>, or `name` itself when it is a folder path."""
    candidates = [data_dir / name] + ([Path(name).expanduser()] if "/" in name else [])
    for folder in candidates:
        if folder.is_dir():
            return folder
    if name in KNOWN_DATASETS:
        raise DataError(
            f"dataset '{name}' is not in {data_dir}; run `gloss data download {name}` or point "
            "--data-dir / GLOSS_DATA_DIR at the folder that holds it."
        )
    known = ", ".join(KNOWN_DATASETS)
    raise DataError(
        f"unknown dataset '{name}'{suggest(name, KNOWN_DATASETS)}: use one of {known}, or put "
        f"train and test files of your own in {data_dir / name}/."
    )


def split_file(folder: Path, split: str) -> Path:
    """The one file of `split` ('train' or 'test') in a dataset folder."""
    found = [folder / f"{split}{suffix}" for suffix in SUFFIXES if (folder / f"{split}{suffix}").is_file()]
    if not found:
        raise DataError(f"{folder}: no {split} file; add {split}.jsonl.gz, {split}.jsonl or {split}.csv.")
    if len(found) > 1:
        raise DataError(f"{folder}: several {split} files ({', '.join(p.name for p in found)}); keep one.")
    return found[0]


@functools.lru_cache(maxsize=8)
def load_corpus(name: str, data_dir: Path) -> Corpus:
    """Read a dataset once per process (trials of one worker share it)."""
    folder = dataset_folder(name, data_dir)
    train_texts, train_names = read_split(split_file(folder, "train"))
    test_path = split_file(folder, "test")
    test_texts, test_names = read_split(test_path)
    label_names = tuple(sorted(set(train_names)))
    ids = {label: i for i, label in enumerate(label_names)}
    unseen = sorted(set(test_names) - set(ids))
    if unseen:
        raise DataError(
            f"{test_path}: test label '{unseen[0]}' never occurs in training; every test class "
            "needs training examples, so fix the label or add training data."
        )
    return Corpus(
        name=name,
        label_names=label_names,
        train_texts=tuple(train_texts),
        train_labels=np.array([ids[label] for label in train_names], dtype=np.int64),
        test_texts=tuple(test_texts),
        test_labels=np.array([ids[label] for label in test_names], dtype=np.int64),
    )
