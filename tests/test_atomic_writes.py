"""Caches and exports are written to a temporary file and renamed: a write killed half way never
leaves a file a later run trusts, and concurrent builders of one cache do not corrupt it."""

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import load_runs
from analysis import plots as plot_module
from trainables.data import tokens
from trainables.model import embedding_cache

TEXTS = [f"text number {i} about wheat and oil" for i in range(24)]
EMBED = {"max_length": 16, "pooling": "mean", "device": torch.device("cpu")}


class Killed(Exception):
    """Stands in for a process killed in the middle of a write."""


def cache_files(kind: str) -> list[Path]:
    return sorted((Path(os.environ["GLOSS_CACHE_DIR"]) / kind).glob("*"))


def test_embedding_cache_killed_mid_write_is_not_trusted(monkeypatch):
    texts = [*TEXTS, "killed while writing"]

    def half_then_die(handle, array):
        handle.write(b"\x93NUMPY half a header")
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(embedding_cache.np, "save", half_then_die)
        with pytest.raises(Killed):
            embedding_cache.pooled_embeddings("tiny-bert", texts, **EMBED)
    key = embedding_cache.cache_key("tiny-bert", texts, 16, "mean")
    assert not [p for p in cache_files("embeddings") if key in p.name and p.suffix == ".npy"]
    again = embedding_cache.pooled_embeddings("tiny-bert", texts, **EMBED)
    assert again.shape == (25, 64) and np.isfinite(again).all()


def build_in_child(log: str, cache: str) -> None:
    """A separate process asking for the same embeddings; records when it had to compute them."""
    os.environ["GLOSS_CACHE_DIR"] = cache
    compute = embedding_cache.embed_texts

    def logged(*args, **kwargs):
        with open(log, "a") as handle:
            handle.write("built\n")
        return compute(*args, **kwargs)

    embedding_cache.embed_texts = logged
    embedding_cache.pooled_embeddings("tiny-bert", TEXTS, **EMBED)


def test_concurrent_builders_share_one_build(tmp_path):
    context = multiprocessing.get_context("spawn")
    log = tmp_path / "builds.log"
    children = [
        context.Process(target=build_in_child, args=(str(log), os.environ["GLOSS_CACHE_DIR"]))
        for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
        assert child.exitcode == 0
    assert log.read_text().splitlines() == ["built"], "one process built, the others waited and read"
    result = embedding_cache.pooled_embeddings("tiny-bert", TEXTS, **EMBED)
    assert result.shape == (24, 64) and not [p for p in cache_files("embeddings") if p.name.endswith(".tmp")]


def test_tokenisation_killed_mid_way_leaves_no_cache(monkeypatch):
    from trainables.model.encoder import load_tokenizer

    tokenizer = load_tokenizer("tiny-bert")
    texts = [f"interrupted tokenisation {i}" for i in range(3000)]
    calls = []

    class Dying:
        """A tokenizer that dies on its second batch of texts."""

        def __call__(self, batch, **kwargs):
            calls.append(len(batch))
            if len(calls) == 2:
                raise Killed
            return tokenizer(batch, **kwargs)

        def __len__(self):
            return len(tokenizer)

        def __getattr__(self, name):
            return getattr(tokenizer, name)

    before = set(cache_files("tokens"))
    with pytest.raises(Killed):
        tokens.tokenize(texts, Dying(), max_length=8)
    assert set(cache_files("tokens")) == before, "nothing left behind"
    assert len(tokens.tokenize(texts, tokenizer, max_length=8)) == 3000


def test_analysis_cache_and_figures_killed_mid_write(tmp_path, monkeypatch):
    import shutil

    study = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "study", tmp_path / "study"))

    def half_then_die(self, path, **kwargs):
        Path(path).write_bytes(b"PAR1 half a table")
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(pd.DataFrame, "to_parquet", half_then_die)
        with pytest.raises(Killed):
            load_runs(study)
    assert not list((study / ".gloss-analysis").glob("*")), "no cache, not even a temporary file"
    assert load_runs(study)["trial_dir"].nunique() == 30

    figure = plot_module.Figure()
    figure.subplots().plot([0, 1], [1, 0])

    def die_saving(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(plot_module.Figure, "savefig", die_saving)
        with pytest.raises(Killed):
            plot_module.save_figure(figure, tmp_path / "figures", "curve")
    assert not list((tmp_path / "figures").glob("*"))
