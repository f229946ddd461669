"""Item 7, on a GPU: steps per second and model FLOPs utilisation of bert-base-size full
fine-tuning at batch 128 x 128 tokens in bf16 (random weights), CE against integrated G-Loss,
eager and compiled (`compile: true`: torch.compile, its compilation timed apart), and the G-Loss
scaling table of item 2 on the device. Meant to finish in under 5 minutes.

    python -m bench.gpu [--peak-tflops 989]     # H100 SXM dense bf16; 989 by default
    python -m bench.gpu --smoke                 # a tiny model on the CPU, to check the script

MFU counts 6 x parameters x tokens per training step (Kaplan et al.), attention excluded."""

import argparse
import time

import torch

from bench.common import median, report

CLASSES = 20


def model_and_batch(smoke: bool, device: torch.device):
    from transformers import BertConfig, BertModel

    from trainables.model.classifier import Classifier
    from trainables.model.encoder import TextEncoder

    config = (
        BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)
        if smoke
        else BertConfig()
    )  # bert-base: 12 layers, hidden 768, 110M parameters
    batch, tokens = (8, 32) if smoke else (128, 128)
    model = Classifier(TextEncoder(BertModel(config, add_pooling_layer=False), "cls"), CLASSES, 0.1).to(
        device
    )
    ids = torch.randint(1000, 29000, (batch, tokens), device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = torch.arange(batch, device=device) % CLASSES
    return model, inputs, labels, batch * tokens


def steps_per_second(model, inputs, labels, objective, device, steps: int) -> tuple[float, float]:
    """Training steps per second after three warm-up steps, and the warm-up's seconds (where
    a compiled model compiles)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            embeddings, logits = model(inputs)
        loss, _ = objective(embeddings, logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    warm_up = timed(3)
    return steps / timed(steps), warm_up


def training_rows(smoke: bool, device: torch.device, peak_tflops: float, steps: int) -> list[dict]:
    from trainables.losses import LossContext, Objective
    from trainables.losses.gloss import GLoss, GLossParams

    rows = []
    gloss = GLoss(GLossParams(sigma=0.5), LossContext(CLASSES, (1,) * CLASSES))
    objectives = {"ce": Objective(None, 0.0), "gloss": Objective(gloss, 0.7)}
    for compiled in (False, True):
        model, inputs, labels, tokens = model_and_batch(smoke, device)
        if compiled:
            model.compile()  # as `compile: true` does, with this bench's fixed shapes
        parameters = sum(p.numel() for p in model.parameters())
        for name, objective in objectives.items():
            rate, warm_up = steps_per_second(model, inputs, labels, objective.to(device), device, steps)
            rows.append(
                {
                    "table": "training",
                    "objective": name,
                    "compiled": compiled,
                    "steps_per_s": rate,
                    "mfu": 6 * parameters * tokens * rate / (peak_tflops * 1e12),
                    "warm_up_s": warm_up,
                    "parameters_m": parameters / 1e6,
                }
            )
    eager_ce, eager_gloss, compiled_ce, compiled_gloss = rows
    eager_gloss["ratio_to_ce"] = eager_ce["steps_per_s"] / eager_gloss["steps_per_s"]
    compiled_gloss["ratio_to_ce"] = compiled_ce["steps_per_s"] / compiled_gloss["steps_per_s"]
    for compiled, eager in ((compiled_ce, eager_ce), (compiled_gloss, eager_gloss)):
        compiled["speed_vs_eager"] = compiled["steps_per_s"] / eager["steps_per_s"]
    return rows


def scaling_rows(device: torch.device, sizes: list[int]) -> list[dict]:
    from bench.gloss_scaling import VARIANTS
    from trainables.losses import LossContext
    from trainables.losses.gloss import GLoss, GLossParams

    rows = []
    for size in sizes:
        for variant, params in VARIANTS.items():
            labels = torch.arange(size, device=device) % 8
            embeddings = torch.randn(size, 768, device=device, requires_grad=True)
            loss = GLoss(GLossParams(sigma=0.5, **params), LossContext(8, (size // 8,) * 8)).to(device)
            times = []
            for repeat in range(4):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                loss(embeddings, labels).value.backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if repeat:
                    times.append(time.perf_counter() - start)
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
            rows.append(
                {
                    "table": "scaling",
                    "batch": size,
                    "variant": variant,
                    "loss_s": median(times),
                    "peak_mb": peak,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device("cpu" if args.smoke else "cuda")
    sizes = [32, 128] if args.smoke else [32, 128, 512, 2048]
    rows = training_rows(args.smoke, device, args.peak_tflops, 2 if args.smoke else args.steps)
    rows += scaling_rows(device, sizes)
    report("gpu", rows, {"peak_tflops": args.peak_tflops}, smoke=args.smoke)


if __name__ == "__main__":
    main()
