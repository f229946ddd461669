"""A Hugging Face encoder with [CLS] or mean pooling, loaded by name, alias or folder."""

from typing import Literal

import torch
from torch import nn

from trainables.model.names import TINY, resolve_model

Pooling = Literal["cls", "mean"]


def load_tokenizer(name: str):
    """The tokenizer of a model name or alias (the tiny test model uses MiniLM's)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name))


def load_backbone(name: str, seed: int = 0) -> nn.Module:
    """Pre-trained weights, or for `tiny-bert` a random 2-layer BERT seeded by `seed`."""
    from transformers import AutoModel, BertConfig, BertModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    if name == TINY:
        config = BertConfig(
            vocab_size=load_tokenizer(name).vocab_size,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=256,
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return BertModel(config, add_pooling_layer=False)
    path = resolve_model(name)
    try:  # PyTorch's fused scaled-dot-product attention, where the architecture has it
        return AutoModel.from_pretrained(path, add_pooling_layer=False, attn_implementation="sdpa")
    except ValueError:  # transformers refuses sdpa for architectures without it
        return AutoModel.from_pretrained(path, add_pooling_layer=False)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """[CLS] vector, or the mean of the non-padding token vectors."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


class TextEncoder(nn.Module):
    """Token ids -> pooled sentence vector."""

    def __init__(self, backbone: nn.Module, pooling: Pooling) -> None:
        super().__init__()
        self.backbone, self.pooling = backbone, pooling
        self.dim = backbone.config.hidden_size

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        return pool(hidden, batch["attention_mask"], self.pooling)
