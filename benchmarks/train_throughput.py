"""Training throughput: the data path, the Trainer's overhead, and the CPU recipe's network.

(a) data path alone (batch assembly, augmentation, input channels; no network), tiles/s:
    the loader path (albumentations per tile in DataLoader workers) against the device
    path (`salt.data.device_batches`: index batches, then batched tensor ops), on a
    fold-sized set of padded tiles. Goal: device ≥ 10× loader and ≥ 20,000 tiles/s.
(b) whole training steps through the real Lightning Trainer (`SaltSegmentation`, the data
    module's device path, bf16 autocast as configured) against the bare step of the same
    network, loss and optimiser on one fixed batch. Goal: within 10 %.
(c) the network of `experiment=cpu` (or `--experiment NAME`) against the recipe's default
    network, fp32 and bf16 (forward + backward + optimiser step), and the layout and
    compile options.
(i) inference throughput with flip TTA (`--parts i`).

    .venv/bin/python benchmarks/train_throughput.py                 # all parts, CPU
    .venv/bin/python benchmarks/train_throughput.py --parts a b     # some parts
    .venv/bin/python benchmarks/train_throughput.py --device cuda --batch-size 256

Prints Markdown tables; figures for this machine are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from salt.training.datamodule import TileDataset, training_transform
from salt.data.device_batches import DeviceTiles, IndexBatches, augment_settings
from salt.geometry import TileGeometry
from salt.data.prepared import PreparedTiles
from salt.precision import native_bf16, trainer_precision
from salt.training.module import SaltSegmentation
from salt.training.run import scheduler_factory

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
GEOMETRY = TileGeometry(148, 128)
CHANNELS = ["image", "depth_ramp", "image_x_depth"]
AUGMENT = {"hflip": 0.5, "brightness": 0.2, "contrast": 0.2, "brightness_contrast_p": 0.5}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def fold_tiles(count: int, seed: int = 0) -> PreparedTiles:
    """`count` padded tiles with masks, as a fold's training subset (content does not change speed)."""
    rng = np.random.default_rng(seed)
    images = rng.random((count, GEOMETRY.padded_size, GEOMETRY.padded_size), dtype=np.float32)
    masks = images > 0.7
    ids = np.array([f"t{i}" for i in range(count)])
    return PreparedTiles(ids, rng.integers(50, 960, count).astype(np.int32), images, masks, GEOMETRY)


# --- (a) data path --------------------------------------------------------------------


def loader_path(tiles: PreparedTiles, batch_size: int, workers: int, batches: int) -> float:
    dataset = TileDataset(tiles, np.arange(len(tiles)), training_transform(GEOMETRY, AUGMENT), CHANNELS)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, persistent_workers=workers > 0)

    def endless():  # a fold holds fewer batches than are timed when batches are large
        while True:
            yield from loader

    iterator = endless()
    next(iterator)  # workers started
    start = time.perf_counter()
    count = sum(len(next(iterator)["image"]) for _ in range(batches))
    return count / (time.perf_counter() - start)


def device_path(tiles: PreparedTiles, batch_size: int, device: str, epochs: int) -> float:
    on_device = DeviceTiles(tiles.images, tiles.masks, tiles.depths, GEOMETRY, CHANNELS).to(torch.device(device))
    epoch = {"now": 0}
    source = IndexBatches(
        np.arange(len(tiles)), batch_size, geometry=GEOMETRY, augment=augment_settings(AUGMENT), shuffle=True, epoch=lambda: epoch["now"]
    )
    count = 0
    start = None
    for epoch["now"] in range(epochs + 1):
        if epoch["now"] == 1:  # epoch 0 warms up
            synchronize(device)
            start = time.perf_counter()
        for batch in source:
            out = on_device.batch({key: value.to(device, non_blocking=True) for key, value in batch.items()})
            count += len(out["image"]) if epoch["now"] else 0
    synchronize(device)
    return count / (time.perf_counter() - start)


def part_a(args: argparse.Namespace) -> None:
    tiles = fold_tiles(args.tiles)
    print(f"\n## (a) data path alone: {args.tiles} padded tiles, batch {args.data_batch_size}, channels {', '.join(CHANNELS)}\n")
    print("| path | tiles / s | vs loader (2 workers) |")
    print("|---|---:|---:|")
    loader_rates = {workers: loader_path(tiles, args.data_batch_size, workers, args.loader_batches) for workers in (0, 2)}
    base = loader_rates[2]
    for workers, rate in loader_rates.items():
        print(f"| loader, albumentations, {workers} workers | {rate:,.0f} | {rate / base:.2f}× |", flush=True)
    for batch_size in sorted({16, args.data_batch_size, 256}):
        rate = device_path(tiles, batch_size, args.device, args.device_epochs)
        print(f"| device ({args.device}), batched tensor ops, batch {batch_size} | {rate:,.0f} | **{rate / base:.1f}×** |", flush=True)


# --- networks -------------------------------------------------------------------------


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["logger=csv", *overrides], return_hydra_config=False)
    OmegaConf.set_struct(cfg, False)
    cfg.encoder.pretrained = False
    return cfg


def step_timing_setup(cfg) -> tuple[SaltSegmentation, dict, object]:
    """The experiment's module as `measure_step_times` takes it, the step shape (batch size,
    channels, crop size) and the autocast context of its precision on this CPU."""
    module = SaltSegmentation(
        net=instantiate(cfg.model), loss=instantiate(cfg.loss), optimizer=instantiate(cfg.optimizer),
        channels_last=cfg.channels_last, low_resolution=cfg.low_resolution,
    )
    shape = {"batch_size": cfg.data.batch_size, "channels": len(cfg.data.channels), "crop_size": cfg.data.padding.crop_size}
    bf16 = native_bf16("cpu") and "32" not in str(cfg.trainer.precision)
    context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    return module, shape, context


def bare_steps(cfg, *, batch_size: int, device: str, bf16: bool, channels_last: bool, compile: bool, warmup: int, iterations: int) -> tuple[float, float]:
    """Tiles/s of forward + loss + backward + optimiser step on one fixed batch, and the
    seconds the untimed warm-up steps took (compiling included)."""
    net = instantiate(cfg.model).to(device).train()
    loss = instantiate(cfg.loss)
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    run = torch.compile(net) if compile else net
    image = torch.rand(batch_size, len(cfg.data.channels), 128, 128, device=device).contiguous(memory_format=memory_format)
    mask = (torch.rand(batch_size, 1, 128, 128, device=device) > 0.7).float()

    def step() -> None:
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            output = run(image)
            total, _ = loss(output.mask_logits.float(), output.empty_logit.float() if output.empty_logit is not None else None, mask)
        total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize(device)
    warmup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronize(device)
    return iterations * batch_size / (time.perf_counter() - start), warmup_seconds


class StepTimer(pl.Callback):
    """Wall time of the training batches after the first `warmup` (data path included)."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device, self.start, self.seconds, self.tiles = warmup, device, None, 0.0, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            synchronize(self.device)
            self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start
        self.tiles = (trainer.num_training_batches - self.warmup) * trainer.datamodule.batch_size


def trainer_steps(cfg, *, data_dir: Path, cache_dir: Path, batch_size: int, device: str, warmup: int, iterations: int) -> float:
    """Tiles/s of training steps run by the Lightning Trainer on the device path."""
    cfg.data.batch_size = batch_size
    datamodule = instantiate(cfg.data, dir=str(data_dir), fold=0, folds=cfg.folds, cache_dir=str(cache_dir), seed=0, _recursive_=False)
    scheduler, interval = scheduler_factory(cfg)
    module = SaltSegmentation(
        net=instantiate(cfg.model),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler if interval == "step" else None,  # a plateau schedule would need validation
        scheduler_interval=interval,
        geometry=datamodule.geometry,
        channels_last=cfg.channels_last,
    )
    timer = StepTimer(warmup, device)
    trainer = pl.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=1,
        precision=cfg.trainer.precision,
        max_epochs=1,
        limit_train_batches=warmup + iterations,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=datamodule)
    return timer.tiles / timer.seconds


def part_b(args: argparse.Namespace) -> None:
    from salt import synthetic

    device_trainer = ["trainer=gpu", "trainer.precision=bf16-mixed"] if args.device.startswith("cuda") else ["trainer=cpu"]
    cfg = compose_train(f"experiment={args.experiment}", *device_trainer)
    cfg.trainer.precision = trainer_precision(cfg.trainer.precision, "gpu" if args.device.startswith("cuda") else "cpu")
    print(f"\n## (b) Trainer against the bare step: experiment={args.experiment} network, batch {args.batch_size}, {cfg.trainer.precision}, {args.device}\n")
    with tempfile.TemporaryDirectory() as tmp:
        # Enough synthetic tiles that a fold holds warm-up + timed batches.
        tiles = synthetic.generate_tiles(seed=0, sections=6, section_cols=10, section_rows=10)
        data_dir = synthetic.write_dataset(Path(tmp) / "data", tiles, seed=0, train_fraction=0.95)
        rates = []
        for _ in range(args.repeats):
            trained = trainer_steps(cfg, data_dir=data_dir, cache_dir=Path(tmp) / "cache", batch_size=args.batch_size, device=args.device, warmup=args.warmup, iterations=args.iterations)
            bare, _ = bare_steps(cfg, batch_size=args.batch_size, device=args.device, bf16="bf16" in str(cfg.trainer.precision), channels_last=cfg.channels_last, compile=False, warmup=args.warmup, iterations=args.iterations)
            rates.append((trained, bare))
    print("| run | Trainer, device path (tiles/s) | bare step (tiles/s) | Trainer / bare |")
    print("|---|---:|---:|---:|")
    for number, (trained, bare) in enumerate(rates, 1):
        print(f"| {number} | {trained:.1f} | {bare:.1f} | {trained / bare:.3f} |", flush=True)


def part_c(args: argparse.Namespace) -> None:
    print(f"\n## (c) networks: forward + backward + optimiser step, batch {args.batch_size}, {args.device}\n")
    if args.device == "cpu":
        print(f"CPU: {platform.processor() or platform.machine()}; native bf16 (AMX or AVX-512 BF16): {'yes' if native_bf16('cpu') else 'no'}\n")
    print(f"| network | precision | layout | compile | tiles / s | vs {'experiment' if args.no_recipe else 'recipe'} fp32 | warm-up steps (s) |")
    print("|---|---|---|---|---:|---:|---:|")
    recipe = "recipe default (resnet34 U-Net, max-pool dropped)"
    # The first case is the ratio's base: the recipe's network in fp32, or with --no-recipe
    # the experiment's network in fp32.
    chosen = f"experiment={args.experiment}"
    cases = [] if args.no_recipe else [(recipe, (), bf16, layout, False) for bf16, layout in ((False, False), (True, False), (True, True))]
    cases += [(chosen, (chosen,), bf16, layout, False) for bf16, layout in ((False, False), (False, True), (True, False), (True, True))]
    if args.compile:
        cases.append((chosen, (chosen,), True, True, True))
    base = None
    for label, overrides, bf16, channels_last, compiled in cases:
        cfg = compose_train(*overrides)
        rate, warmup_seconds = bare_steps(cfg, batch_size=args.batch_size, device=args.device, bf16=bf16, channels_last=channels_last, compile=compiled, warmup=args.warmup + (2 if compiled else 0), iterations=args.iterations)
        base = base or rate
        print(
            f"| {label} | {'bf16 autocast' if bf16 else 'fp32'} | {'channels_last' if channels_last else 'NCHW'} | "
            f"{'yes' if compiled else 'no'} | {rate:.1f} | {rate / base:.1f}× | {warmup_seconds:.1f} |",
            flush=True,
        )


def part_i(args: argparse.Namespace) -> None:
    """Inference: eval-mode forward of tile + mirror (flip TTA), bf16 autocast where the
    device computes bf16 natively (precision=auto), no gradients."""
    bf16 = native_bf16(args.device)
    print(f"\n## (i) inference with flip TTA: {args.experiment} network, batch {args.inference_batch_size}, {args.device}, {'bf16' if bf16 else 'fp32'}\n")
    cfg = compose_train(f"experiment={args.experiment}")
    net = instantiate(cfg.model).to(args.device).eval().to(memory_format=torch.channels_last)
    image = torch.rand(args.inference_batch_size, len(cfg.data.channels), 128, 128, device=args.device).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.inference_mode(), torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            net(image)
            net(image.flip(-1))

    for _ in range(args.warmup):
        step()
    synchronize(args.device)
    start = time.perf_counter()
    for _ in range(args.iterations):
        step()
    synchronize(args.device)
    rate = args.iterations * args.inference_batch_size / (time.perf_counter() - start)
    print("| network | tiles / s (tile + mirror) | 18,500 test tiles |")
    print("|---|---:|---:|")
    print(f"| {args.experiment} | {rate:,.0f} | {18500 / rate:.1f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c", "i"])
    parser.add_argument("--experiment", default="cpu", help="(b, c, i) the experiment whose network is timed")
    parser.add_argument("--inference-batch-size", type=int, default=64, help="(i) batch size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiles", type=int, default=2800, help="(a) tiles in the set (a fold's training tiles)")
    parser.add_argument("--data-batch-size", type=int, default=64, help="(a) batch size")
    parser.add_argument("--loader-batches", type=int, default=40, help="(a) timed loader batches")
    parser.add_argument("--device-epochs", type=int, default=3, help="(a) timed device-path epochs")
    parser.add_argument("--batch-size", type=int, default=16, help="(b, c) training batch size")
    parser.add_argument("--warmup", type=int, default=2, help="(b, c) untimed steps first")
    parser.add_argument("--iterations", type=int, default=8, help="(b, c) timed steps")
    parser.add_argument("--repeats", type=int, default=2, help="(b) Trainer/bare pairs")
    parser.add_argument("--compile", action="store_true", help="(c) add torch.compile (minutes of compiling on a CPU)")
    parser.add_argument("--no-recipe", action="store_true", help="(c) time only the experiment's network (the recipe's fp32 network takes minutes)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.machine()}, "
        f"{platform.processor() or platform.platform()}, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "")
    )
    for part in args.parts:
        {"a": part_a, "b": part_b, "c": part_c, "i": part_i}[part](args)


if __name__ == "__main__":
    main()
