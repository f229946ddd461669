"""Tokenisation through Hugging Face `datasets`, cached on disk by (texts, tokenizer, max_length),
so trials after the first on the same data never tokenise again."""

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from common.paths import cache_dir


def texts_fingerprint(texts: Sequence[str]) -> str:
    """A content hash of a list of texts."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def tokenizer_identity(tokenizer) -> dict:
    """What makes two tokenizers produce the same ids."""
    return {
        "class": type(tokenizer).__name__,
        "name": str(tokenizer.name_or_path),
        "vocab_size": len(tokenizer),
        "lower_case": bool(getattr(tokenizer, "do_lower_case", False)),
    }


def tokenize(texts: Sequence[str], tokenizer, max_length: int) -> list[np.ndarray]:
    """Token ids per text, truncated to `max_length` and unpadded (batches pad dynamically)."""
    import datasets

    key = hashlib.sha256(
        json.dumps(
            {
                "texts": texts_fingerprint(texts),
                "tokenizer": tokenizer_identity(tokenizer),
                "max_length": max_length,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:32]

    def encode(batch: dict) -> dict:
        return {"input_ids": tokenizer(batch["text"], truncation=True, max_length=max_length)["input_ids"]}

    table = datasets.Dataset.from_dict({"text": list(texts)}).map(
        encode,
        batched=True,
        batch_size=1000,
        remove_columns=["text"],
        cache_file_name=str(cache_dir("tokens") / f"{key}.arrow"),
        new_fingerprint=key,
        load_from_cache_file=True,
        desc="tokenising",
    )
    column = table.with_format("numpy")["input_ids"]
    return [np.asarray(ids, dtype=np.int64) for ids in column]
