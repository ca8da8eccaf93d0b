"""Prediction throughput: every test tile of the competition data through one ResNet-34
U-Net (the recipe network, random weights) with horizontal-flip TTA, end to end.

    .venv/bin/python benchmarks/predict_throughput.py [--data-dir ../shared/tgs-salt]
        [--cache-dir /tmp/salt-cache] [--crop center|full] [--precision 32|bf16]
        [--batch-size 32] [--no-tta] [--quick N | --postprocess-bounds]

A run directory (resolved config.yaml + checkpoints/best.ckpt) is written under a
temporary directory with an untrained network: the weights do not change the time. Then
`salt.prediction.predict` runs on it as ``python predict.py`` would (test tiles only,
no out-of-fold, no post-processing) and the figures are printed: the network phase in
tiles per second, and the whole command (padding cache, thresholds, submission).

``--quick N`` times only the network over the first N test tiles (`predict_tiles`), for a
fast comparison of crops or precisions.

``--postprocess-bounds`` times the post-processing rules on the real mosaics instead, and
measures them as on out-of-fold tiles without any model: once with every prediction
empty (what the rules recover from the known neighbours alone) and once with perfect
predictions (the truth: what the rules break).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf, open_dict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def default_data_dir() -> Path:
    return Path(os.environ.get("SALT_DATA_DIR", REPO.parent / "shared" / "tgs-salt"))


def write_untrained_run(run_dir: Path, data_dir: Path, cache_dir: Path, encoder: str) -> None:
    """A run directory as train.py leaves it, with random weights."""
    import hydra
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"encoder={encoder}", "encoder.pretrained=false", f"data.dir={data_dir}", f"paths.cache_dir={cache_dir}", "logger=csv"],
        )
    with open_dict(cfg):
        cfg.hydra = None
        del cfg["hydra"]
    config = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    # Resolve what can be resolved without Hydra's runtime (the run dir is only needed by
    # callbacks and loggers, which prediction never builds).
    for key in ("callbacks", "logger", "trainer"):
        config.pop(key, None)
    config = OmegaConf.create(OmegaConf.to_container(config, resolve=True))
    net = hydra.utils.instantiate(config.model)
    (run_dir / "checkpoints").mkdir(parents=True)
    OmegaConf.save(config, run_dir / "config.yaml")
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, run_dir / "checkpoints" / "best.ckpt")


def postprocess_bounds(data_dir: Path, cache_dir: Path) -> None:
    """Every rule measured on all train tiles (random groups, k = 5) with all-empty and with
    perfect predictions, test tiles predicted empty; prints a markdown table."""
    from salt.folds import FoldSettings, folds_for
    from salt.mosaic import AssemblySettings, mosaics_for
    from salt.prediction.ensemble import split_ids
    from salt.prediction.postprocess import RULES, PostprocessSettings
    from salt.prediction.postprocess.grid import MosaicGrid
    from salt.prediction.postprocess.measure import measure_rules
    from salt.submission import decode_rles, read_rles

    start = time.perf_counter()
    table = mosaics_for(data_dir, cache_dir, AssemblySettings(), log=lambda line: None)
    print(f"mosaics: {table.mosaic_id.nunique()} with {len(table):,} tiles ({time.perf_counter() - start:.1f} s, cached after the first run)")
    rles = read_rles(data_dir / "train.csv")
    train_ids = np.array(list(rles))
    truth = decode_rles(rles, train_ids.tolist())
    test_ids = split_ids(data_dir, "test")
    grid = MosaicGrid.from_table(table, [*train_ids.tolist(), *test_ids.tolist()])
    folds = folds_for(data_dir, cache_dir, FoldSettings.preset("random"), log=lambda line: None)
    fold_of = dict(zip(folds.id, folds.fold))
    groups = np.array([fold_of[tile_id] for tile_id in train_ids.tolist()])
    rules = PostprocessSettings.from_config({"rules": {name: True for name in RULES}}).enabled()
    test = np.zeros((len(test_ids), 101, 101), dtype=bool)
    for name, oof in (("every prediction empty", np.zeros_like(truth)), ("perfect predictions (the truth)", truth)):
        start = time.perf_counter()
        measured = measure_rules(rules, truth=truth, oof=oof.copy(), covered=np.ones(len(truth), dtype=bool), groups=groups, grid=grid, test=test, keep="all")
        seconds = time.perf_counter() - start
        print(f"\n{name}: out-of-fold {measured.score_before:.4f} → {measured.score_after:.4f} with every rule ({seconds:.1f} s for alone + in sequence)")
        print("| rule | gain alone | gain in sequence | held-out tiles changed |\n|---|---:|---:|---:|")
        for m in measured.measures:
            print(f"| {m.name} | {m.alone_gain:+.4f} | {m.sequence_gain:+.4f} | {m.tiles_changed} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "salt-cache")
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--crop", default="center", choices=["center", "full"])
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-tta", action="store_true")
    parser.add_argument("--quick", type=int, default=0, help="time only the network on the first N test tiles")
    parser.add_argument("--postprocess-bounds", action="store_true", help="the rules on the real mosaics, with empty and with perfect predictions")
    args = parser.parse_args()
    if not (args.data_dir / "test").is_dir():
        raise SystemExit(f"error: {args.data_dir}: no test/ directory (set --data-dir or SALT_DATA_DIR)")

    from salt.prediction import InferenceSettings, find_runs, input_padding, load_network, predict, predict_tiles
    from salt.data.prepared import prepare_tiles

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    if args.postprocess_bounds:
        postprocess_bounds(args.data_dir, args.cache_dir)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "bench" / args.encoder / "fold_0"
        write_untrained_run(run_dir, args.data_dir, args.cache_dir, args.encoder)
        if args.quick:
            (run,) = find_runs([run_dir])
            net = load_network(run)
            settings = InferenceSettings(hflip=not args.no_tta, crop=args.crop, batch_size=args.batch_size, precision=args.precision)
            padding = input_padding(run.padding, args.crop, net.size_multiple)
            tiles = prepare_tiles(args.data_dir, args.cache_dir, splits=["test"], padding=padding, log=lambda line: None)["test"]
            start = time.perf_counter()
            count = sum(len(batch.indices) for batch in predict_tiles(net, tiles, np.arange(min(args.quick, len(tiles))), run.channels, settings))
            seconds = time.perf_counter() - start
            print(f"network only, {count} tiles, crop {args.crop} ({padding.crop_size}²), TTA {'off' if args.no_tta else 'on'}, precision {args.precision}: {seconds:.1f} s, {count / seconds:.2f} tiles/s")
        else:
            cfg = OmegaConf.load(REPO / "conf" / "predict.yaml")
            cfg.pop("defaults")
            cfg.pop("hydra")
            cfg.paths = {"output_dir": tmp, "cache_dir": str(args.cache_dir)}
            cfg.postprocess = None
            cfg.update(
                runs=[str(run_dir)], out=str(Path(tmp) / "predict"), crop=args.crop, precision=args.precision,
                batch_size=args.batch_size, test=True,
            )
            cfg.tta.hflip = not args.no_tta
            cfg.oof.enabled = False
            cfg.pictures.largest = 0
            start = time.perf_counter()
            lines: list[str] = []
            result = predict(cfg, log=lambda line: (lines.append(line), print(line, flush=True)))
            total = time.perf_counter() - start
            tiles = result.report["test"]["tiles"]
            network = result.report["timings"]["predict"]
            print(f"network phase: {tiles} tiles in {network:.1f} s = {tiles / network:.2f} tiles/s (TTA {'off' if args.no_tta else 'on'}: {2 if not args.no_tta else 1} passes a tile)")
            print(f"whole predict(): {total:.1f} s = {tiles / total:.2f} tiles/s")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
