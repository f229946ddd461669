"""Tokenisation and embedding caches: a second use computes nothing."""

import numpy as np
import pytest
import torch

from trainables.data.tokens import tokenize
from trainables.model import embedding_cache
from trainables.model.encoder import load_tokenizer


class CountingTokenizer:
    """Wraps a tokenizer and counts calls, passing everything else through."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)

    def __len__(self):
        return len(self.inner)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_second_tokenisation_reads_the_cache():
    texts = [f"document number {i} about grain and oil" for i in range(50)]
    tokenizer = CountingTokenizer(load_tokenizer("minilm"))
    first = tokenize(texts, tokenizer, max_length=8)
    assert tokenizer.calls > 0 and max(len(ids) for ids in first) == 8
    tokenizer.calls = 0
    second = tokenize(texts, tokenizer, max_length=8)
    assert tokenizer.calls == 0
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    tokenize(texts, tokenizer, max_length=16)
    assert tokenizer.calls > 0, "another max_length is another cache entry"


def test_embedding_cache_is_reused(monkeypatch):
    texts = ["a short text", "another short text", "and a third"]
    kwargs = {"max_length": 16, "pooling": "mean", "device": torch.device("cpu")}
    first = embedding_cache.pooled_embeddings("tiny-bert", texts, **kwargs)
    assert first.shape == (3, 64) and first.dtype == np.float32

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(embedding_cache, "embed_texts", fail)
    assert np.array_equal(embedding_cache.pooled_embeddings("tiny-bert", texts, **kwargs), first)
    with pytest.raises(AssertionError):
        embedding_cache.pooled_embeddings("tiny-bert", texts, **{**kwargs, "pooling": "cls"})
