"""What is in a data directory, and whether the benchmark files match their recorded checksums."""

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from common.errors import DataError
from trainables.data.corpus import load_corpus, split_file
from trainables.data.registry import KNOWN_DATASETS


@dataclass(frozen=True)
class DatasetSummary:
    """One dataset folder: document and class counts, or why it could not be read."""

    name: str
    train: int = 0
    test: int = 0
    classes: int = 0
    problem: str = ""


def list_datasets(data_dir: Path) -> list[DatasetSummary]:
    """The known benchmarks (present or not) and any other dataset folder in `data_dir`."""
    folders = sorted(p.name for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []
    names = list(KNOWN_DATASETS) + [name for name in folders if name not in KNOWN_DATASETS]
    return [summarise(name, data_dir) for name in names]


def summarise(name: str, data_dir: Path) -> DatasetSummary:
    """Counts of one dataset, or the problem that stops it loading."""
    try:
        corpus = load_corpus(name, data_dir)
    except DataError as error:
        return DatasetSummary(name, problem=str(error))
    return DatasetSummary(name, len(corpus.train_labels), len(corpus.test_labels), corpus.num_classes)


def sha256_pair(path: Path) -> tuple[str, str]:
    """sha256 of the file as stored and of its uncompressed content."""
    stored = hashlib.sha256(path.read_bytes()).hexdigest()
    content = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    return stored, content


def check_dataset(name: str, data_dir: Path) -> list[str]:
    """Problems of a known benchmark in `data_dir` (counts, checksums); empty when all match.

    The content checksum decides: a file re-compressed by another gzip is still the same data."""
    known = KNOWN_DATASETS[name]
    summary = summarise(name, data_dir)
    if summary.problem:
        return [summary.problem]
    problems = [
        f"{name}: {what} has {found} where {expected} are expected"
        for what, found, expected in (
            ("train", summary.train, known.train),
            ("test", summary.test, known.test),
            ("classes", summary.classes, known.classes),
        )
        if found != expected
    ]
    for split, (_, content_sha) in known.sha256.items():
        path = split_file(data_dir / name, split)
        if not path.name.endswith(".gz") or sha256_pair(path)[1] != content_sha:
            problems.append(
                f"{path}: content differs from the recorded checksum; run `gloss data download {name}`"
            )
    return problems
