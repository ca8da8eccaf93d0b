"""Training throughput of each named encoder: forward + backward images per second.

Every ``conf/encoder/*.yaml`` under the recipe's network (``conf/model/unet.yaml``:
U-Net + hypercolumn + empty-tile head, first max-pool dropped), random weights, one
optimiser-free step on a BCE loss per iteration. Prints a Markdown table.

    .venv/bin/python benchmarks/model_throughput.py                      # CPU, batch 16, 128×128
    .venv/bin/python benchmarks/model_throughput.py --device cuda --iterations 20
    .venv/bin/python benchmarks/model_throughput.py --encoders resnet18 resnet34
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
ENCODERS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "se_resnext50", "se_resnext101"]


def measure(encoder: str, *, model: str, size: int, batch_size: int, warmup: int, iterations: int, device: str) -> dict:
    """Build one network and time ``iterations`` forward + backward passes after ``warmup``."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name=None,
            overrides=[
                f"+encoder={encoder}",
                f"+model={model}",
                "encoder.pretrained=false",  # speed does not depend on the weights
                "model.hypercolumn=true",
                "model.empty_head=true",
            ],
        )
    network = instantiate(cfg.model).to(device).train()
    image = torch.randn(batch_size, network.encoder.in_chans, size, size, device=device)
    mask = torch.rand(batch_size, 1, size, size, device=device).round()
    salt = mask.flatten(1).amax(1)

    def step() -> None:
        output = network(image)
        loss = F.binary_cross_entropy_with_logits(output.mask_logits, mask)
        loss = loss + F.binary_cross_entropy_with_logits(output.empty_logit, salt)
        loss.backward()
        network.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iterations
    return {
        "config": encoder,
        "timm": network.encoder.name,
        "parameters": sum(parameter.numel() for parameter in network.parameters()),
        "seconds": seconds,
        "images_per_second": batch_size / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=ENCODERS, help="conf/encoder names")
    parser.add_argument("--model", default="unet", help="conf/model name")
    parser.add_argument("--size", type=int, default=128, help="input side, pixels")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    print(
        f"# {args.model} + hypercolumn + empty head, {args.size}×{args.size}, batch {args.batch_size}, "
        f"{args.warmup} warm-up + {args.iterations} timed iterations, device {args.device}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"{platform.machine()})"
    )
    print("| encoder | timm model | parameters | s / iteration | images / s |")
    print("|---|---|---:|---:|---:|")
    for encoder in args.encoders:
        row = measure(
            encoder,
            model=args.model,
            size=args.size,
            batch_size=args.batch_size,
            warmup=args.warmup,
            iterations=args.iterations,
            device=args.device,
        )
        print(
            f"| {row['config']} | {row['timm']} | {row['parameters'] / 1e6:.1f} M | "
            f"{row['seconds']:.2f} | {row['images_per_second']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
