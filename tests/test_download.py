"""download_dataset against a local HTTP server whose tarballs hold the real data put back into
the public sources' layout: the rebuilt files must carry the published checksums, and bad
sources, a dead server and a second download must be handled."""

import gzip
import hashlib
import io
import json
import socket
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.errors import DataError
from trainables.data.download import REUTERS_COMMIT, TEXT_GCN_COMMIT, Sources, download_dataset
from trainables.data.registry import KNOWN_DATASETS

TEXT_GCN = f"text_gcn-{TEXT_GCN_COMMIT}"
REUTER = f"Reuter-{REUTERS_COMMIT}"
SEPARATORS = [" ", "\n", ", ", " 1,987.5 ", " &lt;", "-", "  (", " &#3; "]


def documents(data_dir: Path, name: str, split: str) -> list[dict]:
    """The published documents of one split, in file order."""
    with gzip.open(data_dir / name / f"{split}.jsonl.gz", "rt", encoding="ascii") as handle:
        return [json.loads(line) for line in handle]


def both_splits(data_dir: Path, name: str, test_first: bool = False) -> list[tuple[str, dict]]:
    """(split, document) pairs of both splits, in the order TextGCN's index file lists them."""
    order = ("test", "train") if test_first else ("train", "test")
    return [(split, doc) for split in order for doc in documents(data_dir, name, split)]


def write_tarball(path: Path, top: str, files: dict[str, bytes]) -> None:
    """A codeload-style tarball: every file below one '<repo>-<commit>/' folder."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        folder = tarfile.TarInfo(f"{top}/data")  # a folder entry, as GitHub's tarballs have
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def index_file(rows: list[tuple[str, str, str]]) -> bytes:
    """A TextGCN data/<NAME>.txt: 'id-or-path<TAB>split<TAB>label' per line."""
    return "".join(f"{key}\t{split}\t{label}\n" for key, split, label in rows).encode()


def mr_files(data_dir: Path, drop_last: bool = False) -> dict[str, bytes]:
    """data/mr.txt and data/corpus/mr.txt (Windows-1252, CRLF, some trailing blanks)."""
    pairs = both_splits(data_dir, "mr")[: -1 if drop_last else None]
    corpus = b"".join(
        doc["text"].encode("cp1252") + (b" \r\n" if i % 7 == 0 else b"\r\n")
        for i, (_, doc) in enumerate(pairs)
    )
    index = index_file([(str(i), split, doc["label"]) for i, (split, doc) in enumerate(pairs)])
    return {"data/mr.txt": index, "data/corpus/mr.txt": corpus}


def labelled_file(docs: list[dict]) -> bytes:
    """An R8/R52 'label<TAB>text ' file, with the trailing blank TextGCN's files have."""
    return "".join(f"{doc['label']}\t{doc['text']} \n" for doc in docs).encode()


def r8_files(data_dir: Path) -> dict[str, bytes]:
    """data/R8.txt and data/R8/{train,test}.txt."""
    pairs = both_splits(data_dir, "r8")
    return {
        "data/R8.txt": index_file([(str(i), s, doc["label"]) for i, (s, doc) in enumerate(pairs)]),
        "data/R8/train.txt": labelled_file(documents(data_dir, "r8", "train")),
        "data/R8/test.txt": labelled_file(documents(data_dir, "r8", "test")),
    }


def r52_files(data_dir: Path) -> dict[str, bytes]:
    """data/R52.txt and data/R52/test.txt (S1 lacks R52/train.txt)."""
    pairs = both_splits(data_dir, "r52")
    return {
        "data/R52.txt": index_file([(str(i), s, doc["label"]) for i, (s, doc) in enumerate(pairs)]),
        "data/R52/test.txt": labelled_file(documents(data_dir, "r52", "test")),
    }


def sgml_text(text: str, style: int) -> str:
    """A TEXT element whose title + body (or whole UNPROC text) normalises back to `text`."""
    words = text.upper().split(" ")
    if style == 0:
        return f'<TEXT TYPE="UNPROC">&#2;\n{" 10 ".join(words)}\n&#3;</TEXT>'
    if style == 1:
        return f'<TEXT TYPE="BRIEF">&#2;\n<TITLE>{" ".join(words)} &lt;</TITLE>\n</TEXT>'
    body = "".join(SEPARATORS[i % len(SEPARATORS)] + word for i, word in enumerate(words[1:]))
    return (
        f"<TEXT>&#2;\n<TITLE>{words[0]} &amp; 1987</TITLE>\n<AUTHOR>    By Ann Writer, Reuters"
        f"</AUTHOR>\n<DATELINE>    Z\xfcRICH, April 8 - </DATELINE><BODY>{body}\n&#3;"
        "</BODY></TEXT>"
    )


def sgml_document(newid: int, topics_attr: str, split: str, topics: list[str], text: str) -> str:
    """One <REUTERS> element in the Reuters-21578 layout."""
    return (
        f'<REUTERS TOPICS="{topics_attr}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" '
        f'OLDID="{newid + 5000}" NEWID="{newid}">\n<DATE>26-FEB-1987 15:01:01.79</DATE>\n'
        f"<TOPICS>{''.join(f'<D>{t}</D>' for t in topics)}</TOPICS>\n<PLACES><D>usa</D></PLACES>\n"
        "<UNKNOWN> \n&#5;&#5;&#5;C T\n&#22;&#22;&#1;f0704&#31;reute</UNKNOWN>\n"
        f"{sgml_text(text, newid % 9)}\n</REUTERS>\n"
    )


def distractors(newid: int) -> list[tuple[int, str, str, list[str], str]]:
    """Documents README step 1 or 2 must drop: no topics flag, unused split, two topics, a
    topic without test documents."""
    text = "distractor words"
    return [
        (newid, "NO", "TRAIN", ["earn"], text),
        (newid + 1, "YES", "NOT-USED", ["acq"], text),
        (newid + 2, "YES", "TRAIN", ["earn", "acq"], text),
        (newid + 3, "YES", "TRAIN", ["only-train"], text),
    ]


def reuters_files(data_dir: Path) -> dict[str, bytes]:
    """Reuters SGML files holding R52's documents (train and test interleaved) and distractors."""
    train, test = documents(data_dir, "r52", "train"), documents(data_dir, "r52", "test")
    ordered = sorted(
        [(i / len(train), "TRAIN", d) for i, d in enumerate(train)]
        + [(i / len(test), "TEST", d) for i, d in enumerate(test)],
        key=lambda item: item[0],
    )
    elements, newid = [], 1
    for position, (_, split, doc) in enumerate(ordered):
        if position % 500 == 0:
            elements += [sgml_document(*d) for d in distractors(newid)]
            newid += 4
        elements.append(sgml_document(newid, "YES", split, [doc["label"]], doc["text"]))
        newid += 1
    header = '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n'
    return {
        f"data/reut2-{k // 1000:03d}.sgm": (header + "".join(elements[k : k + 1000])).encode("latin-1")
        for k in range(0, len(elements), 1000)
    }


def listed_files(data_dir: Path, name: str) -> dict[str, bytes]:
    """ohsumed or 20ng: the index file and one Latin-1 raw file per document, test set first."""
    files, rows = {}, []
    for i, (split, doc) in enumerate(both_splits(data_dir, name, test_first=True)):
        if name == "20ng":
            folder = f"20news-bydate-{split}"
            path = f"data/20ng/{folder}/{doc['label']}/{50000 + i}"
        else:
            folder = "training" if split == "train" else "test"
            path = f"data/ohsumed_single_23/{folder}/{doc['label']}/{i:07d}"
        files[path] = (doc["text"].replace(" ", "\n") + "\n").encode("latin-1")
        rows.append((path, folder, doc["label"]))
    files[f"data/{name}.txt"] = index_file(rows)
    return files


def assert_published(folder: Path, name: str) -> None:
    """Both split files have the registry's gzip and content sha256."""
    for split, (gz_sha, content_sha) in KNOWN_DATASETS[name].sha256.items():
        raw = (folder / f"{split}.jsonl.gz").read_bytes()
        assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == content_sha, (name, split)
        assert hashlib.sha256(raw).hexdigest() == gz_sha, (name, split)


@pytest.fixture(autouse=True)
def fresh_download_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty downloads cache, so cached archives never leak across."""
    monkeypatch.setenv("GLOSS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def archives(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with text_gcn.tar.gz (mr, r8, r52 files) and reuter.tar.gz (Reuters SGML)."""
    root = tmp_path_factory.mktemp("archives")
    write_tarball(
        root / "text_gcn.tar.gz", TEXT_GCN, mr_files(data_dir) | r8_files(data_dir) | r52_files(data_dir)
    )
    write_tarball(root / "reuter.tar.gz", REUTER, reuters_files(data_dir))
    return root


class Server:
    """A ThreadingHTTPServer on 127.0.0.1 serving one folder and recording request paths."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def sources(self) -> Sources:
        return Sources(text_gcn=f"{self.url}/text_gcn.tar.gz", reuters=f"{self.url}/reuter.tar.gz")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    """Start servers on demand: serve(folder) -> Server; all are shut down after the test."""
    servers: list[Server] = []

    def start(root: Path) -> Server:
        servers.append(Server(root))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("name", ["mr", "r8", "r52"])
def test_download_reproduces_the_published_files(name, archives, serve, tmp_path):
    server = serve(archives)
    folder = download_dataset(name, tmp_path / "data", sources=server.sources(), progress=False)
    assert folder == tmp_path / "data" / name
    assert sorted(p.name for p in folder.iterdir()) == ["test.jsonl.gz", "train.jsonl.gz"]
    assert_published(folder, name)


def test_second_dataset_reuses_the_cached_archive(archives, serve, tmp_path):
    server = serve(archives)
    for name in ("mr", "r8", "mr"):
        download_dataset(name, tmp_path / "data", sources=server.sources(), progress=False)
    assert server.requests == ["/text_gcn.tar.gz"]


def test_count_mismatch_is_refused_and_writes_nothing(data_dir, serve, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    write_tarball(root / "text_gcn.tar.gz", TEXT_GCN, mr_files(data_dir, drop_last=True))
    server = serve(root)
    with pytest.raises(DataError, match=r"^mr: .*3553 test documents where 3554"):
        download_dataset("mr", tmp_path / "data", sources=server.sources(), progress=False)
    assert not (tmp_path / "data" / "mr").exists()


def test_labels_differing_from_the_index_are_refused(data_dir, serve, tmp_path):
    files = r8_files(data_dir)
    files["data/R8.txt"] = files["data/R8.txt"].replace(b"0\ttrain\tearn", b"0\ttrain\tacq", 1)
    root = tmp_path / "www"
    root.mkdir()
    write_tarball(root / "text_gcn.tar.gz", TEXT_GCN, files)
    with pytest.raises(DataError, match=r"r8: .*data/R8\.txt"):
        download_dataset("r8", tmp_path / "data", sources=serve(root).sources(), progress=False)


def test_unreachable_server_suggests_copying_by_hand(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sources = Sources(text_gcn=f"http://127.0.0.1:{port}/text_gcn.tar.gz")
    with pytest.raises(DataError, match=r"cannot download .* by hand into"):
        download_dataset("r8", tmp_path / "data", sources=sources, progress=False)
    downloads = tmp_path / "cache" / "downloads"
    assert [p.name for p in downloads.iterdir() if not p.name.endswith(".lock")] == []


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(DataError, match=r"did you mean 'r52'.*mr, r8, r52, ohsumed, 20ng"):
        download_dataset("r53", tmp_path)


@pytest.mark.parametrize("name", ["ohsumed", pytest.param("20ng", marks=pytest.mark.slow)])
def test_download_reproduces_the_published_raw_file_datasets(name, data_dir, serve, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    write_tarball(root / "text_gcn.tar.gz", TEXT_GCN, listed_files(data_dir, name))
    folder = download_dataset(name, tmp_path / "data", sources=serve(root).sources(), progress=False)
    assert_published(folder, name)
