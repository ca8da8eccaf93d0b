"""How steady is the time budget's calibration? (`salt/training/budget.py`)

Before its first epoch a run with `budget_minutes` times a few training steps of its own
network at full and at half resolution. The half-resolution epochs are planned before any
full-resolution epoch has run on the clock, so the ratio of the two step times decides
how the budget is split. This script times the experiment's network `--repeats` times both
ways, in turn: the steps of one resolution after those of the other (how the budget
measured until it took them in turn), and the two resolutions taken in turn
(`measure_step_times`, what it does now). It prints each repeat's step times and
full / half ratio, and their spread; compare with the ratio the Trainer's epochs show on
the clock (`time/epoch_minutes` of a run).

    .venv/bin/python benchmarks/budget_calibration.py --repeats 4
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from salt.training.budget import measure_step_times
from salt.training.module import SaltSegmentation
from train_throughput import compose_train, step_timing_setup


def one_after_the_other(module: SaltSegmentation, *, batch_size: int, channels: int, crop_size: int, context, warmup: int, steps: int) -> tuple[float, float]:
    """Median full- and half-resolution step, all steps of one resolution, then the other."""
    net = module.net
    optimizer = module.optimizer_factory(params=net.parameters())
    image = torch.rand(batch_size, channels, crop_size, crop_size)
    mask = (torch.rand(batch_size, 1, crop_size, crop_size) > 0.7).float()

    def median_step(batch: dict) -> float:
        inputs = batch["image"].contiguous(memory_format=torch.channels_last if module.hparams.channels_last else torch.contiguous_format)
        seconds = []
        for index in range(warmup + steps):
            start = time.perf_counter()
            with context():
                output = net(inputs)
                total, _ = module.loss(output.mask_logits, output.empty_logit, batch["mask"])
            total.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if index >= warmup:
                seconds.append(time.perf_counter() - start)
        return statistics.median(seconds)

    full = median_step({"image": image, "mask": mask})
    low = median_step(module.low_resolution_batch({"image": image, "mask": mask}, 0))
    return full, low


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="cpu")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    cfg = compose_train(f"experiment={args.experiment}")
    module, shape, context = step_timing_setup(cfg)
    bf16 = context is not contextlib.nullcontext
    print(f"experiment={args.experiment}, {'bf16 autocast' if bf16 else 'fp32'}, batch {shape['batch_size']}, "
          f"{torch.get_num_threads()} threads; median of 7 steps after 2 of warm-up\n")
    print("| repeat | one after the other: full s | half s | full / half | in turn: full s | half s | full / half |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    ratios: dict[str, list[float]] = {"after": [], "turn": []}
    for repeat in range(args.repeats):
        full_a, low_a = one_after_the_other(module, context=context, warmup=2, steps=7, **shape)
        times = measure_step_times(module, device=torch.device("cpu"), train_context=context, val_context=context, **shape)
        ratios["after"].append(full_a / low_a)
        ratios["turn"].append(times.full / times.low)
        print(f"| {repeat} | {full_a:.2f} | {low_a:.2f} | {full_a / low_a:.2f} | {times.full:.2f} | {times.low:.2f} | {times.full / times.low:.2f} |", flush=True)
    for name, label in (("after", "one after the other"), ("turn", "in turn")):
        values = ratios[name]
        print(f"\n{label}: full / half {min(values):.2f} to {max(values):.2f}, mean {statistics.mean(values):.2f}")


if __name__ == "__main__":
    main()
