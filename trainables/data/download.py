"""Rebuild the five TextGCN benchmarks from their public sources, byte for byte as the data README
describes them: fetch two repository archives once, read the needed files straight from the tar,
check splits, labels and counts, and write <data_dir>/<name>/{train,test}.jsonl.gz atomically."""

import functools
import hashlib
import http.client
import json
import re
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common.atomic import atomic_path, file_lock
from common.errors import DataError, suggest
from common.paths import cache_dir
from trainables.data.registry import KNOWN_DATASETS, KnownDataset

TEXT_GCN_COMMIT = "962223652e9bb164ac2d83cd09fc7b8845ce860b"
REUTERS_COMMIT = "d0a779dd9cc078074c4185f1cac45e5a840a124c"
SPLITS = {
    "train": "train",
    "training": "train",
    "20news-bydate-train": "train",
    "test": "test",
    "20news-bydate-test": "test",
}
SOURCE_FIX = "point Sources at the commits the data README names"

# (split, label, text) of one document, in the order of TextGCN's data/<NAME>.txt.
Row = tuple[str, str, str]


@dataclass(frozen=True)
class Sources:
    """Archive URLs of the public sources: TextGCN's repository (S1) and Reuters-21578 (S2)."""

    text_gcn: str = f"https://codeload.github.com/yao8839836/text_gcn/tar.gz/{TEXT_GCN_COMMIT}"
    reuters: str = f"https://codeload.github.com/Arthur-sauvage/Reuter/tar.gz/{REUTERS_COMMIT}"


DEFAULT_SOURCES = Sources()

# fetch(url, path prefixes) -> {path inside the repository: bytes}
Fetch = Callable[[str, tuple[str, ...]], dict[str, bytes]]


def download_dataset(
    name: str, data_dir: Path, *, sources: Sources = DEFAULT_SOURCES, progress: bool = True
) -> Path:
    """Rebuild dataset `name` into <data_dir>/<name>/ from its public sources; return that folder."""
    known = KNOWN_DATASETS.get(name)
    if known is None:
        raise DataError(
            f"unknown dataset '{name}'{suggest(name, KNOWN_DATASETS)}: download one of "
            f"{', '.join(KNOWN_DATASETS)}."
        )
    folder = Path(data_dir) / name
    fetch = functools.partial(_fetch, folder=folder, progress=progress)
    try:
        rows = BUILDERS[name](sources, fetch)
    except ValueError as error:  # a line without its TABs, a byte Windows-1252 lacks, ...
        raise DataError(f"{name}: a source file is malformed ({error}); {SOURCE_FIX}.") from None
    for split, split_rows in _splits(known, rows, folder).items():
        with atomic_path(folder / f"{split}.jsonl.gz") as tmp:
            tmp.write_bytes(_jsonl_gz(split_rows))
    return folder


def _mr(sources: Sources, fetch: Fetch) -> list[Row]:
    """MR: corpus lines decoded as Windows-1252 and stripped, paired by position with mr.txt."""
    files = fetch(sources.text_gcn, ("data/mr.txt", "data/corpus/mr.txt"))
    index = _index(_file(files, "data/mr.txt"))
    texts = [line.decode("cp1252").strip() for line in _lines(_file(files, "data/corpus/mr.txt"))]
    if len(texts) != len(index):
        raise DataError(
            f"mr: data/corpus/mr.txt has {len(texts)} lines but data/mr.txt has {len(index)} "
            f"rows; {SOURCE_FIX}."
        )
    return [(split, label, text) for (_, split, label), text in zip(index, texts, strict=True)]


def _r8(sources: Sources, fetch: Fetch) -> list[Row]:
    """R8: R8/train.txt then R8/test.txt, checked against R8.txt's split and label per row."""
    files = fetch(sources.text_gcn, ("data/R8.txt", "data/R8/train.txt", "data/R8/test.txt"))
    rows = _labelled(_file(files, "data/R8/train.txt"), "train")
    rows += _labelled(_file(files, "data/R8/test.txt"), "test")
    _check_index("R8", rows, _index(_file(files, "data/R8.txt")))
    return rows


def _r52(sources: Sources, fetch: Fetch) -> list[Row]:
    """R52: training texts rebuilt from the Reuters SGML, test texts from S1's R52/test.txt."""
    files = fetch(sources.text_gcn, ("data/R52.txt", "data/R52/test.txt"))
    sgml = fetch(sources.reuters, ("data/reut2-",))
    rebuilt = _r52_documents([sgml[path] for path in sorted(sgml) if path.endswith(".sgm")])
    test = _labelled(_file(files, "data/R52/test.txt"), "test")
    if [row for row in rebuilt if row[0] == "test"] != test:
        raise DataError(
            f"r52: the test documents rebuilt from the Reuters SGML differ from TextGCN's "
            f"data/R52/test.txt; {SOURCE_FIX}."
        )
    rows = [row for row in rebuilt if row[0] == "train"] + test
    _check_index("R52", rows, _index(_file(files, "data/R52.txt")))
    return rows


def _listed(index_path: str, folder: str) -> Callable[[Sources, Fetch], list[Row]]:
    """A builder for ohsumed and 20ng: one raw file per index row, decoded Latin-1, '\\n' -> ' '."""

    def build(sources: Sources, fetch: Fetch) -> list[Row]:
        files = fetch(sources.text_gcn, (index_path, folder))
        return [
            (split, label, _file(files, path).decode("latin-1").replace("\n", " ").strip())
            for path, split, label in _index(_file(files, index_path))
        ]

    return build


BUILDERS: dict[str, Callable[[Sources, Fetch], list[Row]]] = {
    "mr": _mr,
    "r8": _r8,
    "r52": _r52,
    "ohsumed": _listed("data/ohsumed.txt", "data/ohsumed_single_23/"),
    "20ng": _listed("data/20ng.txt", "data/20ng/"),
}

_REUTERS = re.compile(r"<REUTERS([^>]*)>(.*?)</REUTERS>", re.S)
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_TOPIC = re.compile(r"<D>(.*?)</D>", re.S)
_TEXT = re.compile(r"<TEXT([^>]*)>(.*?)</TEXT>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_ENTITY = re.compile(r"&#?\w+;")
_NON_LETTERS = re.compile(r"[^A-Za-z]+")


def _r52_documents(sgml_files: list[bytes]) -> list[Row]:
    """README steps 1-3: single-topic ModApte documents of topics in both splits, NEWID order."""
    documents = []
    for data in sgml_files:
        for attributes, element in _REUTERS.findall(data.decode("latin-1")):
            attribute = dict(_ATTRIBUTE.findall(attributes))
            split = attribute.get("LEWISSPLIT", "").lower()
            topics = _TOPIC.findall(_group(_TOPICS, element))
            if attribute.get("TOPICS") == "YES" and split in ("train", "test") and len(topics) == 1:
                documents.append((int(attribute["NEWID"]), split, topics[0], _all_terms(element)))
    in_train = {topic for _, split, topic, _ in documents if split == "train"}
    in_both = in_train & {topic for _, split, topic, _ in documents if split == "test"}
    return [(split, topic, text) for _, split, topic, text in sorted(documents) if topic in in_both]


def _all_terms(element: str) -> str:
    """README steps 4-6: TITLE + ' ' + BODY (UNPROC: all TEXT), entities and non-letters -> ' '."""
    match = _TEXT.search(element)
    attributes, text = match.groups() if match else ("", "")
    raw = text if "UNPROC" in attributes else f"{_group(_TITLE, text)} {_group(_BODY, text)}"
    return _NON_LETTERS.sub(" ", _ENTITY.sub(" ", raw)).lower().strip()


def _group(pattern: re.Pattern, text: str) -> str:
    """The first group of the first match of `pattern` in `text`, or '' when there is none."""
    match = pattern.search(text)
    return match.group(1) if match else ""


def _lines(data: bytes) -> list[bytes]:
    """Lines split at b'\\n' only, as TextGCN's binary readlines() splits them, no final empty."""
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def _index(data: bytes) -> list[tuple[str, str, str]]:
    """Rows of a TextGCN data/<NAME>.txt: (document id or file path, 'train'|'test', label)."""
    rows = []
    for line in _lines(data):
        key, split, label = line.decode("latin-1").strip().split("\t")
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}'")
        rows.append((key, SPLITS[split], label))
    return rows


def _labelled(data: bytes, split: str) -> list[Row]:
    """Rows of a 'label<TAB>text' file (R8, R52): the text after the first TAB, stripped."""
    rows = []
    for line in _lines(data):
        label, _, text = line.decode("latin-1").partition("\t")
        rows.append((split, label, text.strip()))
    return rows


def _check_index(index_name: str, rows: list[Row], index: list[tuple[str, str, str]]) -> None:
    """Refuse documents whose split and label differ from data/<NAME>.txt at any position."""
    if [(split, label) for split, label, _ in rows] != [(split, label) for _, split, label in index]:
        raise DataError(
            f"{index_name.lower()}: the documents' splits and labels differ from TextGCN's "
            f"data/{index_name}.txt; {SOURCE_FIX}."
        )


def _file(files: dict[str, bytes], path: str) -> bytes:
    """The archive's file at `path`; a missing one means the archive is not the named commit."""
    if path not in files:
        raise DataError(f"the source archive has no {path}; {SOURCE_FIX}.")
    return files[path]


def _splits(known: KnownDataset, rows: list[Row], folder: Path) -> dict[str, list[Row]]:
    """Rows by split in index order, checked against the registry's document and class counts."""
    splits = {split: [row for row in rows if row[0] == split] for split in ("train", "test")}
    found = {
        "train": len(splits["train"]),
        "test": len(splits["test"]),
        "classes": len({label for _, label, _ in splits["train"]}),
    }
    expected = {"train": known.train, "test": known.test, "classes": known.classes}
    for what in expected:
        if found[what] != expected[what]:
            counted = "classes" if what == "classes" else f"{what} documents"
            raise DataError(
                f"{known.name}: the sources give {found[what]} {counted} where {expected[what]} "
                f"are expected; {SOURCE_FIX}, or copy the published files by hand into {folder}."
            )
    return splits


def _jsonl_gz(rows: list[Row]) -> bytes:
    """The split file's bytes: ASCII JSON lines {"text", "label"}, compressed like `gzip -n -9`."""
    lines = (json.dumps({"text": text, "label": label}) + "\n" for _, label, text in rows)
    return _gzip("".join(lines).encode("ascii"))


def _gzip(content: bytes) -> bytes:
    """Compress with GNU gzip itself when installed (its deflate, not zlib's, made the published
    bytes); otherwise with zlib, which gives the same content in different compressed bytes."""
    if binary := shutil.which("gzip"):
        return subprocess.run(
            [binary, "-n", "-9", "-c"], input=content, capture_output=True, check=True
        ).stdout
    return zlib.compress(content, level=9, wbits=31)


def _fetch(url: str, prefixes: tuple[str, ...], *, folder: Path, progress: bool) -> dict[str, bytes]:
    """Files of the archive at `url` whose repository path starts with one of `prefixes`."""
    archive = _cached_archive(url, folder, progress)
    files = {}
    try:
        with tarfile.open(archive, "r|gz") as tar:  # one streaming pass, nothing extracted
            for member in tar:
                path = member.name.partition("/")[2]  # drop the '<repo>-<commit>/' top folder
                if member.isfile() and path.startswith(prefixes):
                    files[path] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataError(
            f"{archive} cannot be read ({error}); delete it so the next run downloads it again."
        ) from None
    return files


def _cached_archive(url: str, folder: Path, progress: bool) -> Path:
    """The archive at `url`, downloaded once into the downloads cache and reused afterwards."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", urllib.parse.urlsplit(url).path).strip("-")[-80:]
    target = cache_dir("downloads") / f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    with file_lock(target):
        if not target.exists():
            with atomic_path(target) as tmp:
                _download(url, tmp, folder, progress)
    return target


def _download(url: str, destination: Path, folder: Path, progress: bool) -> None:
    """Stream `url` into `destination` with a progress bar; DataError when the network fails."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
            size = int(response.headers.get("Content-Length") or 0) or None
            name = "/".join(urllib.parse.urlsplit(url).path.strip("/").split("/")[:2])
            with tqdm(total=size, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(
            f"cannot download {url} ({reason}); check the network connection, or copy "
            f"train.jsonl.gz and test.jsonl.gz by hand into {folder}."
        ) from None
