"""Where a trial trains and in which precision, decided once before any data or model is loaded.

A trial that was given a GPU, or asked for `device: cuda`, trains on CUDA or fails at once with one
sentence naming the node, the cause and the fix; it never falls back to the CPU. Under Ray a trial
given no GPU trains on the CPU even where CUDA exists (Ray hides no device from it, so it would
take a GPU nobody reserved). Precision `auto` is bf16 on CUDA cards with native bfloat16, fp16
(with a gradient scaler) on older cards and fp32 on the CPU; an explicit request is honoured or
refused, never silently changed."""

import os
import socket
from dataclasses import dataclass
from typing import Literal

import torch

from common.errors import GlossError

Precision = Literal["bf16", "fp16", "fp32"]
Bf16Support = Literal["native", "emulated", "none"]
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


class DeviceError(GlossError):
    """A trial cannot have the device or precision it asked for on this node.

    Its text starts on a line of its own, so that the last line of the traceback Ray writes to a
    trial's error.txt (the line `gloss run`'s summary shows) is the sentence alone, without the
    traceback's `module.Class:` prefix; `sentence` holds it."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence

    def __str__(self) -> str:
        return "\n" + self.sentence


@dataclass(frozen=True)
class Placement:
    """The device a trial trains on and the precision it trains in."""

    device: torch.device
    precision: Precision
    gpu_name: str = ""

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return AUTOCAST_DTYPES[self.precision]

    def record(self) -> dict[str, str]:
        """The fields every record carries: device (cpu/cuda), GPU name ('' on CPU), precision."""
        return {"device": self.device.type, "gpu_name": self.gpu_name, "precision": self.precision}


def place(device: str, precision: str, gpus: float | None = None, node: str | None = None) -> Placement:
    """The placement for a config's `device` and `precision`. `gpus` is what Ray gave the trial
    (None outside Ray: `auto` then means CUDA when it works); `node` names this machine in errors."""
    node = node or socket.gethostname()
    target = choose_device(device, gpus)
    if target.type == "cpu":
        return Placement(target, resolve_precision(precision, "cpu", "native"))
    if problem := cuda_problem():
        raise DeviceError(no_cuda_message(node, device, gpus, *problem))
    name = torch.cuda.get_device_name(target)
    torch.set_float32_matmul_precision("high")  # TF32 tensor cores for what runs in fp32 (Ampere on)
    try:
        return Placement(target, resolve_precision(precision, "cuda", bf16_support(), name), name)
    except ValueError as error:
        raise DeviceError(f"{node}: {error}.") from None


def no_cuda_message(node: str, device: str, gpus: float | None, cause: str, fix: str) -> str:
    """One sentence: the node, why the trial needs CUDA, why CUDA fails there, and the fixes."""
    asked = f"resources.gpu is {gpus:g}" if gpus else "its config says device: cuda"
    cpu = (
        "resources.gpu: 0" if device == "auto" else "device: cpu" + (" and resources.gpu: 0" if gpus else "")
    )
    return f"{node}: the trial needs CUDA ({asked}) but {cause}; {fix}, or set {cpu} to train on the CPU."


def choose_device(device: str, gpus: float | None) -> torch.device:
    """cpu or cuda: an explicit choice wins; `auto` follows the trial's GPUs under Ray, and
    outside Ray uses CUDA when it works."""
    if device != "auto":
        return torch.device(device)
    if gpus is None:
        return torch.device("cuda" if cuda_problem() is None else "cpu")
    return torch.device("cuda" if gpus > 0 else "cpu")


def cuda_problem() -> tuple[str, str] | None:
    """Why torch cannot use a CUDA device here, and the fix; None when it can."""
    if torch.version.cuda is None and torch.version.hip is None:
        return (
            f"torch {torch.__version__} is built without CUDA (torch.version.cuda is None)",
            "install a CUDA build of torch there",
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        torch.cuda.init()
        torch.ones(1, device="cuda").add_(1).item()
    except Exception as error:  # no driver, a driver too old for this torch, no kernel for the card
        reason = " ".join(str(error).split()).split(". ")[0].rstrip(".")
        cause = f"CUDA does not work there ({reason}; CUDA_VISIBLE_DEVICES={visible})"
        return cause, f"check `nvidia-smi` there and that its driver supports CUDA {torch.version.cuda}"
    return None


def bf16_support() -> Bf16Support:
    """How the current CUDA device runs bfloat16: natively (compute capability 8.0 and later),
    emulated (slowly, through float32), or not at all."""
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return "native"
    return "emulated" if torch.cuda.is_bf16_supported(including_emulation=True) else "none"


def resolve_precision(
    requested: str, device_type: str, bf16: Bf16Support, card: str = "this GPU"
) -> Precision:
    """The precision to train in, given the device type and its bfloat16 support. `auto` is bf16
    on CUDA with native bfloat16, fp16 on other CUDA cards and fp32 on the CPU; an explicit
    request is kept, and a bf16 that the card cannot run at all raises ValueError."""
    if requested == "auto":
        if device_type != "cuda":
            return "fp32"
        return "bf16" if bf16 == "native" else "fp16"
    if requested == "bf16" and device_type == "cuda" and bf16 == "none":
        raise ValueError(f"precision: bf16 is not supported by {card}; set precision: fp16 or auto")
    return requested  # type: ignore[return-value]
