"""Read one split file (JSONL, JSONL.gz, CSV, CSV.gz) into texts and labels, naming the file and
line of anything malformed."""

import csv
import gzip
import io
import json
from pathlib import Path

from common.errors import DataError

SUFFIXES = (".jsonl.gz", ".jsonl", ".csv.gz", ".csv")


def open_text(path: Path) -> io.TextIOBase:
    """Open a possibly gzip-compressed text file as UTF-8."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_split(path: Path) -> tuple[list[str], list[str]]:
    """Texts and label names of one split file; DataError with file:line on bad content."""
    try:
        with open_text(path) as handle:
            rows = _csv_rows(handle, path) if ".csv" in path.name else _jsonl_rows(handle, path)
            texts, labels = [], []
            for line, row in rows:
                text, label = _check_row(row, path, line)
                texts.append(text)
                labels.append(label)
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read ({error}); replace it with a valid file.") from None
    if not texts:
        raise DataError(f"{path}: holds no examples; each line needs a 'text' and a 'label'.")
    return texts, labels


def _jsonl_rows(handle: io.TextIOBase, path: Path):
    for line, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{path}:{line}: not valid JSON ({error.msg}); each line must be an object "
                'such as {"text": "...", "label": "..."}.'
            ) from None


def _csv_rows(handle: io.TextIOBase, path: Path):
    reader = csv.DictReader(handle)
    missing = {"text", "label"} - set(reader.fieldnames or ())
    if missing:
        raise DataError(
            f"{path}:1: the header lacks {' and '.join(sorted(missing))}; name the columns text and label."
        )
    for row in reader:
        yield reader.line_num, row


def _check_row(row: object, path: Path, line: int) -> tuple[str, str]:
    if not isinstance(row, dict) or "text" not in row or "label" not in row:
        raise DataError(f"{path}:{line}: each example needs a 'text' and a 'label' field.")
    text, label = row["text"], row["label"]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{path}:{line}: 'text' must be a non-empty string.")
    if isinstance(label, bool) or not isinstance(label, str | int) or str(label) == "":
        raise DataError(f"{path}:{line}: 'label' must be a non-empty string or an integer.")
    return text, str(label)
