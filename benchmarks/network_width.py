"""Narrower networks for the CPU recipe: training step times against its network.

On a CPU the convolutions' multiply-adds set the pace of a training step (conv backward is
half of it), so an hour buys epochs in proportion to the network's width. This script
times the steps the time budget times (`measure_step_times`: full and half resolution in
turn, and a validation batch) for `experiment=cpu` with the full-width ResNet-18 and the
decoder it had until 2026-12-02, and with narrower encoders and decoders (its network now
among them), `--repeats` times each, the networks in turn, and prints the medians, each
network's speed-up over the first, and its parameter count.

    .venv/bin/python benchmarks/network_width.py --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

import torch

from salt.training.budget import measure_step_times
from train_throughput import compose_train, step_timing_setup

WIDE_DECODER = "model.decoder_channels=[128,64,32,16,8]"
NETWORKS = {
    "ResNet-18, decoder 128-64-32-16-8 (experiment=cpu until 2026-12-02)": ["encoder=resnet18", WIDE_DECODER],
    "encoder=resnet18_half, decoder 128-64-32-16-8": ["encoder=resnet18_half", WIDE_DECODER],
    "experiment=cpu: encoder=resnet18_half, decoder 64-32-16-16-8": [],
    "encoder.name=resnet10t, decoder 128-64-32-16-8": ["encoder=resnet18", "encoder.name=resnet10t", WIDE_DECODER],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    modules, shapes, contexts = {}, {}, {}
    for label, overrides in NETWORKS.items():
        torch.manual_seed(0)
        modules[label], shapes[label], contexts[label] = step_timing_setup(compose_train(f"experiment={args.experiment}", *overrides))
    first = next(iter(NETWORKS))
    bf16 = contexts[first] is not contextlib.nullcontext
    print(f"experiment={args.experiment}, {'bf16 autocast' if bf16 else 'fp32'}, batch {shapes[first]['batch_size']}, "
          f"{torch.get_num_threads()} threads; median of {args.repeats} repeats, the networks taken in turn\n")
    times: dict[str, list] = {label: [] for label in NETWORKS}
    for _ in range(args.repeats):
        for label, module in modules.items():
            context = contexts[label]
            times[label].append(measure_step_times(module, device=torch.device("cpu"), train_context=context, val_context=context, **shapes[label]))
    median = {
        label: {kind: statistics.median(getattr(t, kind) for t in measured) for kind in ("full", "low", "validation")}
        for label, measured in times.items()
    }
    print("| network | parameters | full s | half s | validation s | full speed-up | half speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, steps in median.items():
        parameters = sum(parameter.numel() for parameter in modules[label].net.parameters())
        print(f"| {label} | {parameters / 1e6:.1f} M | {steps['full']:.2f} | {steps['low']:.2f} | {steps['validation']:.2f} | "
              f"{median[first]['full'] / steps['full']:.2f}x | {median[first]['low'] / steps['low']:.2f}x |")


if __name__ == "__main__":
    main()
