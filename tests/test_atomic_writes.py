"""Writers killed for real: each cache, table, figure and checkpoint write runs in a child process
that is SIGKILLed once its first bytes are on disk (tests/killable.py). No file a later run trusts
is ever half-written, a leftover temporary file is never read, the next write of the same target
removes it, and the next run rebuilds. Concurrent builders of one cache overlap for real and build
it once; without the lock they build it several times."""

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import load_runs
from analysis import plots as plot_module
from analysis.report import Report
from common import atomic
from tests import killable
from tests.killable import Stalled, kill_mid_write, stalled_open
from tests.processes import uninterrupted_run
from trainables.checkpoint import STATE_FILE, load_state
from trainables.config import TrialConfig
from trainables.data import tokens
from trainables.model import embedding_cache
from trainables.model.encoder import load_tokenizer

EMBED = {"max_length": 16, "pooling": "mean", "device": torch.device("cpu")}
FIXTURE_STUDY = Path(__file__).parent / "fixtures" / "study"


def cache_folder(kind: str) -> Path:
    return Path(os.environ["GLOSS_CACHE_DIR"]) / kind


def assert_leftover_of(leftover: Path, target: Path, pid: int, size: int) -> None:
    """The killed writer's temporary file: beside `target`, named after it and the writer's pid, and
    holding exactly the bytes written before the kill."""
    assert leftover.parent == target.parent
    assert leftover.name.startswith(f".{target.name}.") and f".{pid}." in leftover.name
    assert leftover.suffix == ".tmp" and leftover.stat().st_size == size


# The write helpers themselves

HELPERS = {"atomic_path": atomic.atomic_path}


def write_through(helper: str, target: Path, marker: Path) -> None:
    """Replace `target` through a write helper; stall after 4 bytes."""
    with HELPERS[helper](target) as tmp, open(tmp, "wb") as handle:
        Stalled(handle, marker, after=4).write(b"new contents")


@pytest.mark.parametrize("helper", sorted(HELPERS))
def test_killed_writer_leaves_the_target_whole_and_the_next_write_removes_its_leftover(helper, tmp_path):
    target = tmp_path / "out" / "table.bin"
    target.parent.mkdir()
    target.write_bytes(b"old contents")
    pid, leftover = kill_mid_write(
        write_through, helper, target, tmp_path / "marker", marker=tmp_path / "marker"
    )
    assert target.read_bytes() == b"old contents", "the target is untouched"
    assert_leftover_of(leftover, target, pid, size=4)
    live = target.parent / f"{atomic.host_prefix(target)}{os.getpid()}.live.tmp"
    live.write_bytes(b"a writer that still runs")
    other = target.parent / f".other.bin.{socket.gethostname()}.{pid}.x.tmp"
    other.write_bytes(b"another target's")
    with HELPERS[helper](target) as tmp:
        tmp.write_bytes(b"next run")
    assert target.read_bytes() == b"next run"
    assert not leftover.exists(), "the dead writer's leftover is removed by the next write"
    assert live.exists() and other.exists(), "a running writer's file, and other targets', stay"


# Embedding cache


def embed_until_killed(cache: str, marker: Path, texts: list[str]) -> None:
    os.environ["GLOSS_CACHE_DIR"] = cache
    embedding_cache.open = stalled_open(marker, after=300)  # shadows the built-in for np.save's file
    embedding_cache.pooled_embeddings("tiny-bert", texts, **EMBED)


def test_embedding_cache_killed_mid_write(tmp_path):
    texts = [f"killed while embedding {i}" for i in range(25)]
    target = cache_folder("embeddings") / f"{embedding_cache.cache_key('tiny-bert', texts, 16, 'mean')}.npy"
    marker = tmp_path / "marker"
    pid, leftover = kill_mid_write(
        embed_until_killed, os.environ["GLOSS_CACHE_DIR"], marker, texts, marker=marker
    )
    assert not target.exists()
    assert_leftover_of(leftover, target, pid, size=300)
    rebuilt = embedding_cache.pooled_embeddings("tiny-bert", texts, **EMBED)
    assert not leftover.exists()
    reference = embedding_cache.embed_texts("tiny-bert", texts, **EMBED)
    assert np.array_equal(np.load(target), rebuilt) and np.allclose(rebuilt, reference, atol=1e-6)


# Tokenisation cache (Hugging Face `datasets` writes a temporary file and renames it)


def tokenize_until_killed(cache: str, marker: Path, texts: list[str]) -> None:
    """The real tokenisation, with `datasets`' writer stalled once its first batch is on disk."""
    from datasets.arrow_writer import ArrowWriter

    write_table = ArrowWriter.write_table

    def stalled(self, *args, **kwargs):
        write_table(self, *args, **kwargs)
        self.stream.flush()
        assert os.path.getsize(self._path) > 0
        killable.tell_parent(marker, self._path)
        killable.block_until_killed()

    ArrowWriter.write_table = stalled
    os.environ["GLOSS_CACHE_DIR"] = cache
    tokens.tokenize(texts, load_tokenizer("tiny-bert"), max_length=8)


def test_tokenisation_killed_mid_write(tmp_path):
    texts = [f"interrupted tokenisation {i} of wheat" for i in range(3000)]
    before = set(cache_folder("tokens").glob("*.arrow"))
    marker = tmp_path / "marker"
    _, leftover = kill_mid_write(
        tokenize_until_killed, os.environ["GLOSS_CACHE_DIR"], marker, texts, marker=marker
    )
    assert set(cache_folder("tokens").glob("*.arrow")) == before, "no cache file"
    assert leftover.stat().st_size > 0
    tokenizer = load_tokenizer("tiny-bert")
    rebuilt = tokens.tokenize(texts, tokenizer, max_length=8)
    reference = tokenizer(texts, truncation=True, max_length=8)["input_ids"]
    assert [ids.tolist() for ids in rebuilt] == reference
    assert len(set(cache_folder("tokens").glob("*.arrow")) - before) == 1
    # datasets names its temporary file tmpXXXXXXXX without the writer's pid: nothing reads it,
    # and nothing removes it either (tokens.py would need its own temporary folder per writer).
    assert leftover.exists()


# Analysis cache


def load_until_killed(study: Path, marker: Path) -> None:
    real = pd.DataFrame.to_parquet

    def stalled(self, path, **kwargs):
        with open(path, "wb") as handle:
            return real(self, Stalled(handle, marker, after=1000), **kwargs)

    pd.DataFrame.to_parquet = stalled
    load_runs(study)


def test_analysis_cache_killed_while_being_updated(tmp_path):
    study = Path(shutil.copytree(FIXTURE_STUDY, tmp_path / "study"))
    load_runs(study)
    cache = study / ".gloss-analysis"
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    changed = sorted((study / "grid").iterdir())[0]
    (changed / "error.txt").write_text("Traceback ...\nRuntimeError: out of memory\n")
    marker = tmp_path / "marker"
    pid, leftover = kill_mid_write(load_until_killed, study, marker, marker=marker)
    assert {p.name: p.read_bytes() for p in cache.iterdir() if p != leftover} == before, "old cache whole"
    assert_leftover_of(leftover, cache / "runs.parquet", pid, size=1000)
    runs = load_runs(study)
    assert not leftover.exists()
    assert set(runs.loc[runs["trial_dir"] == str(changed), "error"]) == {"RuntimeError: out of memory"}
    assert runs["trial_dir"].nunique() == 30
    assert sorted(p.name for p in cache.iterdir()) == ["manifest.json", "runs.parquet"]


# Figures and tables


def sample_figure():
    figure = plot_module.Figure()
    figure.subplots().plot([0, 1], [1, 0])
    return figure


def save_figure_until_killed(folder: Path, marker: Path) -> None:
    real = plot_module.Figure.savefig

    def stalled(self, path, **kwargs):
        with open(path, "wb") as handle:
            real(self, Stalled(handle, marker, after=100), **kwargs)

    plot_module.Figure.savefig = stalled
    plot_module.save_figure(sample_figure(), folder, "curve")


def test_figure_killed_mid_write(tmp_path):
    folder, marker = tmp_path / "figures", tmp_path / "marker"
    pid, leftover = kill_mid_write(save_figure_until_killed, folder, marker, marker=marker)
    assert [p.name for p in folder.iterdir()] == [leftover.name], "no curve.png, no curve.svg"
    assert_leftover_of(leftover, folder / "curve.png", pid, size=100)
    png, svg = plot_module.save_figure(sample_figure(), folder, "curve")
    assert png.read_bytes().startswith(b"\x89PNG") and b"</svg>" in svg.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["curve.png", "curve.svg"]


def table(value: float) -> pd.DataFrame:
    return pd.DataFrame({"loss": ["ce", "gloss"], "macro_f1": [value, value + 0.1]})


def write_table_until_killed(out: Path, marker: Path) -> None:
    def stalled(self, data, **kwargs):
        with Stalled(open(self, "w", **kwargs), marker, after=20) as handle:
            handle.write(data)

    Path.write_text = stalled  # what common.atomic.write_text writes with
    Report(out).table("results", table(0.9))


def test_report_table_killed_mid_write(tmp_path):
    out, marker = tmp_path / "report", tmp_path / "marker"
    Report(out).table("results", table(0.5))
    old = {p.name: p.read_text() for p in (out / "tables").iterdir()}
    pid, leftover = kill_mid_write(write_table_until_killed, out, marker, marker=marker)
    assert {p.name: p.read_text() for p in (out / "tables").iterdir() if p != leftover} == old
    assert_leftover_of(leftover, out / "tables" / "results.md", pid, size=20)
    Report(out).table("results", table(0.9))
    assert (out / "tables" / "results.md").read_text() == table(0.9).to_markdown() + "\n"
    assert sorted(p.name for p in (out / "tables").iterdir()) == ["results.md", "results.tex"]


# Checkpoints: a trial SIGKILLed while saving one resumes from the previous complete one

CHECKPOINTED = {
    "checkpoint_every_epochs": 1,  # a state every epoch: the kill comes while epoch 2's is written
    "dataset": "r8",
    "loss": "gloss",
    "model": "tiny-bert",
    "fidelity": "frozen",
    "train_size": 120,
    "eval_size": 60,
    "max_length": 32,
    "epochs": 3,
    "patience": None,
    "seed": 5,
}
STALLED_EPOCH = 2


def stalls_saving(folder: str):
    """The real trainable, whose checkpoint of epoch 2 stalls half-written (first attempt only)."""

    def trainable(config):
        import io

        import torch

        from trainables import trainable as real
        from trainables.training import trainer as module

        log, marker = Path(folder) / "epochs.log", Path(folder) / "marker"
        train_epoch, save = module.Trainer._train_epoch, torch.save

        def logged(self):
            with open(log, "a") as handle:
                handle.write(f"{self.epoch}\n")
            return train_epoch(self)

        def stalled_save(state, path, **kwargs):
            if state.get("epoch") != STALLED_EPOCH or marker.exists():
                return save(state, path, **kwargs)
            size = len((buffer := io.BytesIO(), save(state, buffer))[0].getvalue())
            with open(path, "wb") as handle:
                save(state, Stalled(handle, marker, after=size // 2), **kwargs)

        module.Trainer._train_epoch, torch.save = logged, stalled_save
        real.train_trial(config)

    return trainable


def kill_when_stalled(marker: Path, killed: list, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if marker.exists():
        pid, writing = marker.read_text().splitlines()
        os.kill(int(pid), signal.SIGKILL)
        killed.append(Path(writing))


def test_trial_killed_while_saving_a_checkpoint_resumes_from_the_previous_one(tmp_path, data_dir, local_ray):
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from common.records import SEARCH_METRIC, SEARCH_MODE
    from study.searchers import FixedTrials

    config = TrialConfig.from_dict({**CHECKPOINTED, "data_dir": str(data_dir)}).to_dict()
    killed = []
    killer = threading.Thread(target=kill_when_stalled, args=(tmp_path / "marker", killed), daemon=True)
    killer.start()
    tuner = tune.Tuner(
        tune.with_resources(stalls_saving(str(tmp_path)), {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=FixedTrials([config]), num_samples=1, metric=SEARCH_METRIC, mode=SEARCH_MODE
        ),
        run_config=tune.RunConfig(
            name="saving",
            storage_path=str(tmp_path / "results"),
            failure_config=tune.FailureConfig(max_failures=1),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            callbacks=[JsonLoggerCallback(), CSVLoggerCallback()],
        ),
    )
    (result,) = tuner.fit()
    killer.join()
    (half,) = killed
    assert result.error is None
    starts = [int(line) for line in (tmp_path / "epochs.log").read_text().split()]
    assert starts == [1, 2, 2, 3], "the trial resumed from epoch 1's checkpoint and redid epoch 2"
    saved = sorted(Path(result.path).glob("checkpoint_*/trainer_state.pt"))
    assert [load_state(p.parent)["epoch"] for p in saved] == [2, 3], "every kept checkpoint loads"
    assert half.name == STATE_FILE and half.stat().st_size > 0, "the kill came mid-save"
    assert Path(tempfile.gettempdir()) in half.parents, "in the worker's temporary folder, not in storage"
    shutil.rmtree(half.parent)  # nothing else removes it (see RELIABILITY.md)
    reference = uninterrupted_run(CHECKPOINTED, data_dir)
    for key in ("best_epoch", "best_score", "selected_test_macro_f1", "train_loss"):
        assert result.metrics[key] == pytest.approx(reference[key], rel=1e-9, abs=1e-12), key


# Concurrent builders of one cache

BUILDERS = 3


def build_in_child(log: str, cache: str, texts: list[str], start, inside, locked: bool, out: str) -> None:
    """One of three processes asking for the same embeddings at once (all leave `start` together).
    A build logs itself, then waits up to 5 s for every builder to be inside a build at once."""
    os.environ["GLOSS_CACHE_DIR"] = cache
    compute = embedding_cache.embed_texts

    def slow_build(*args, **kwargs):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        with contextlib.suppress(threading.BrokenBarrierError):
            inside.wait(timeout=5)
        return compute(*args, **kwargs)

    embedding_cache.embed_texts = slow_build
    if not locked:
        embedding_cache.file_lock = lambda path: contextlib.nullcontext()
    start.wait()
    np.save(Path(out) / f"{os.getpid()}.npy", embedding_cache.pooled_embeddings("tiny-bert", texts, **EMBED))


@pytest.mark.parametrize("locked", [True, False], ids=["locked", "control-without-lock"])
def test_concurrent_builders_share_one_build(tmp_path, locked):
    context = killable.context(__name__)
    texts = [f"{tmp_path.name} built concurrently {i}" for i in range(24)]
    start, inside = context.Barrier(BUILDERS), context.Barrier(BUILDERS)
    log = tmp_path / "builds.log"
    args = (str(log), os.environ["GLOSS_CACHE_DIR"], texts, start, inside, locked, str(tmp_path))
    children = [context.Process(target=build_in_child, args=args) for _ in range(BUILDERS)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
        assert child.exitcode == 0
    builds = log.read_text().splitlines()
    results = [np.load(tmp_path / f"{child.pid}.npy") for child in children]
    assert all(np.array_equal(result, results[0]) for result in results)
    if locked:
        assert len(builds) == 1, "one process built, the others waited for the lock and read its file"
        assert inside.broken, "no two builders were ever inside a build at once"
    else:
        assert len(builds) > 1, "without the lock the overlapping builders each build"
    assert not list(cache_folder("embeddings").glob(".*.tmp"))
