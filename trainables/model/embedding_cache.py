"""Pooled embeddings of a frozen pre-trained encoder, computed once per (model, texts, max_length,
pooling) and cached on disk; written atomically under a lock so concurrent trials share one build."""

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import torch

from common.atomic import atomic_path, file_lock
from common.paths import cache_dir
from trainables.data.tokens import texts_fingerprint, tokenize
from trainables.model.encoder import Pooling, TextEncoder, load_backbone, load_tokenizer
from trainables.model.names import resolve_model

EMBED_BATCH = 64


def cache_key(model: str, texts: Sequence[str], max_length: int, pooling: Pooling) -> str:
    """The file stem of one cached embedding matrix."""
    spec = {
        "model": resolve_model(model),
        "alias": model,
        "texts": texts_fingerprint(texts),
        "max_length": max_length,
        "pooling": pooling,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def pooled_embeddings(
    model: str,
    texts: Sequence[str],
    *,
    max_length: int,
    pooling: Pooling,
    device: torch.device,
    label: str = "",
) -> np.ndarray:
    """[N, D] float32 embeddings of `texts`, from the cache or computed (with a progress bar)."""
    path = (
        cache_dir("embeddings")
        / f"{label}{'-' if label else ''}{cache_key(model, texts, max_length, pooling)}.npy"
    )
    if path.exists():
        return np.load(path)
    with file_lock(path):
        if path.exists():
            return np.load(path)
        matrix = embed_texts(model, texts, max_length=max_length, pooling=pooling, device=device, label=label)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, matrix)
    return matrix


@torch.inference_mode()
def embed_texts(
    model: str,
    texts: Sequence[str],
    *,
    max_length: int,
    pooling: Pooling,
    device: torch.device,
    label: str = "",
) -> np.ndarray:
    """Run the pre-trained encoder over `texts` in length-sorted batches (little padding)."""
    from tqdm.auto import tqdm

    from trainables.data.inputs import TokenInputs

    tokenizer = load_tokenizer(model)
    ids = tokenize(texts, tokenizer, max_length)
    inputs = TokenInputs(ids, np.zeros(len(ids), dtype=np.int64), tokenizer.pad_token_id)
    encoder = TextEncoder(load_backbone(model), pooling).to(device).eval()
    order = np.argsort(inputs.lengths(), kind="stable")
    out = np.empty((len(ids), encoder.dim), dtype=np.float32)
    for start in tqdm(range(0, len(order), EMBED_BATCH), desc=f"embedding {label}".strip(), unit="batch"):
        chunk = order[start : start + EMBED_BATCH]
        batch = {key: value.to(device) for key, value in inputs.batch(chunk).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out[chunk] = encoder(batch).float().cpu().numpy()
    return out
