"""Whole-section prediction speed: windows/s and section samples/s of `salt.section`.

    .venv/bin/python benchmarks/section.py [--height 751 --width 1501] [--stride 50]
        [--networks cpu resnet34] [--precision 32 bf16] [--device cpu] [--batch-size 32]

A synthetic section (`salt.synthetic.section`, the default is a 2-D line of 1,501 traces
× 751 samples: 3 s at 4 ms) is predicted by `predict_section` exactly as
``python -m salt.section`` does (windows cut and normalised, biharmonic padding, input
channels, flip TTA or not, blending, no-data muting), with untrained networks built from
composed configs (the weights do not change the time):

- ``cpu``: the network of ``experiment=cpu`` (ResNet-18 U-Net, narrow decoder);
- ``resnet34``: the recipe's default network (ResNet-34 U-Net, stem max-pool dropped);
- ``none``: a network that returns a constant, to time the rest of the pipeline alone.

Each case runs once untimed on a small section (warm-up), then times the whole section.
Prints a Markdown table, with the time a 12,000 × 3,000-sample section would take at the
measured rate (same stride).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from salt import synthetic
from salt.data.prepared import PaddingSettings
from salt.models import SegmentationOutput
from salt.prediction import InferenceSettings
from salt.section import SectionModel, SectionSettings, WindowGrid, predict_section

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
NETWORKS = {"cpu": ("experiment=cpu",), "resnet34": ("encoder=resnet34",), "none": ()}
LARGE = (12_000, 3_000)  # the large section, samples


class ConstantNet(nn.Module):
    """P(salt) = 0.5 everywhere: what the pipeline costs without a network."""

    size_multiple = 32

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        return SegmentationOutput(torch.zeros_like(x[:, :1]), None)


def build_model(name: str) -> SectionModel:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["logger=csv", *NETWORKS[name]])
    OmegaConf.set_struct(cfg, False)
    cfg.encoder.in_chans = len(cfg.data.channels)
    cfg.encoder.pretrained = False
    padding = PaddingSettings.from_config(cfg.data.padding)
    net = ConstantNet() if name == "none" else instantiate(cfg.model)
    return SectionModel(net.eval(), tuple(cfg.data.channels), padding, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=751, help="samples down the section")
    parser.add_argument("--width", type=int, default=1501, help="traces along the section")
    parser.add_argument("--stride", type=int, default=50)
    parser.add_argument("--networks", nargs="+", default=["none", "cpu", "resnet34"], choices=list(NETWORKS))
    parser.add_argument("--precision", nargs="+", default=["32"], choices=["32", "bf16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
    )
    values, _ = synthetic.section(np.random.default_rng(0), args.height, args.width)
    warm, _ = synthetic.section(np.random.default_rng(1), 151, 301)
    windows = len(WindowGrid(args.height, args.width, args.stride))
    large = len(WindowGrid(*LARGE, args.stride))
    print(f"section {args.height:,} × {args.width:,} samples, stride {args.stride}: {windows:,} windows ({large:,} for {LARGE[0]:,} × {LARGE[1]:,})\n")
    print("| network | flip TTA | precision | seconds | windows/s | samples/s | 12,000 × 3,000 |")
    print("|---|---|---|---:|---:|---:|---:|")
    settings = SectionSettings(stride=args.stride, progress_every=0)
    for name in args.networks:
        model = build_model(name)
        for precision in args.precision if name != "none" else ["32"]:
            for tta in (True, False):
                inference = InferenceSettings(hflip=tta, batch_size=args.batch_size, device=args.device, precision=precision)
                predict_section(warm, [model], settings, inference)
                start = time.perf_counter()
                predict_section(values, [model], settings, inference)
                seconds = time.perf_counter() - start
                rate = windows / seconds
                label = {"none": "none (pipeline alone)", "cpu": "`experiment=cpu`", "resnet34": "ResNet-34 (recipe)"}[name]
                print(
                    f"| {label} | {'yes' if tta else 'no'} | {precision} | {seconds:.1f} | {rate:.1f} | "
                    f"{values.size / seconds:,.0f} | {large / rate / 60:.1f} min |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
