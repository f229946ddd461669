"""Shared fixtures: the real data directory, an isolated cache, and the tiny test encoder."""

import os
from pathlib import Path

import pytest

from study.ray_session import prepare_environment

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Before Ray is imported: every test's local Ray stays on 127.0.0.1, with gloss's settings.
prepare_environment(None)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark data: $GLOSS_DATA_DIR, else ../shared/data beside the checkout."""
    path = Path(os.environ.get("GLOSS_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (path / "r8" / "train.jsonl.gz").exists():
        pytest.fail(f"real data not found in {path}; set GLOSS_DATA_DIR")
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Caches (tokens, embeddings) live in one temporary folder for the whole test session."""
    path = tmp_path_factory.mktemp("gloss-cache")
    os.environ["GLOSS_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray (127.0.0.1 only, 2 CPUs) shared by the tests that run studies."""
    import ray

    from study.ray_session import connect

    connect(None, num_cpus=2)
    yield
    ray.shutdown()
