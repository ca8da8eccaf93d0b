"""What mosaic post-processing gains on real out-of-fold tiles, per assembly setting.

    python benchmarks/mosaic_gain.py --run outputs/cpu/resnet18/fold_0 \
        --setting "" --setting "max_ratio=0.85" [--data DIR] [--masks FILE.npz]

The judge of an assembly setting is what the mosaic rules gain with it, for a fixed trained
network. The network runs once: its thresholded masks of the out-of-fold tiles and of every
test tile (flip TTA, bf16, the default thresholds of conf/predict.yaml, the one
binarisation rule) are kept in `--masks` (packed bits, about 1 MB) and reused while the
checkpoint is the same. Then, for each setting (assembly keys as ``key=value`` separated by
commas; "" is the defaults): assemble the 22,000 tiles (cached under outputs/cache like every assembly),
measure the rules of conf/postprocess/argus.yaml on the out-of-fold masks exactly as
`predict.py` does (random groups, k = 5, each rule in sequence, kept when it helps), and
print the tiles placed (train and out-of-fold among them) and each rule's gain with the
held-out tiles it changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from salt.mosaic import AssemblySettings, mosaics_for  # noqa: E402
from salt.prediction.ensemble import PreparedSplits, ensemble_means, split_ids  # noqa: E402
from salt.prediction.pipeline import inference_settings, predict_config  # noqa: E402
from salt.prediction.postprocess import PostprocessSettings  # noqa: E402
from salt.prediction.postprocess.grid import MosaicGrid  # noqa: E402
from salt.prediction.postprocess.measure import measure_groups, measure_rules  # noqa: E402
from salt.prediction.runs import find_runs  # noqa: E402
from salt.prediction.splits import SplitMeans, binarise, choose_thresholds  # noqa: E402
from salt.submission import decode_rles, read_rles  # noqa: E402


def predicted_masks(
    run: str, data_dir: Path, cache_dir: Path, path: Path, train_ids: np.ndarray, truth: np.ndarray
) -> dict[str, np.ndarray]:
    """The network's out-of-fold and test masks before post-processing, from `path` when
    saved from the same checkpoint (path and modification time)."""
    runs = find_runs([run], "best")
    checkpoint = runs[0].checkpoint
    stamp = f"{checkpoint.resolve()} {checkpoint.stat().st_mtime_ns}"
    if path.exists():
        with np.load(path) as saved:
            if str(saved["checkpoint"]) == stamp:
                return dict(saved)
        print(f"{path}: saved from another checkpoint, predicting again")
    cfg = predict_config("precision=bf16", f"data_dir={data_dir}")
    test_ids = split_ids(data_dir, "test")
    start = time.perf_counter()
    test_mean, oof_mean = ensemble_means(
        runs, inference_settings(cfg), PreparedSplits(data_dir, cache_dir), test_ids=test_ids, train_ids=train_ids
    )
    print(f"network: {time.perf_counter() - start:.0f} s")
    oof_means = SplitMeans.of(oof_mean)
    thresholds, _ = choose_thresholds(cfg, oof_means, truth)
    oof = binarise("out-of-fold", train_ids, oof_means, thresholds)
    test = binarise("test", test_ids, SplitMeans.of(test_mean), thresholds)
    saved = {
        "test_ids": test_ids,
        "oof": np.packbits(oof.before, axis=-1),
        "covered": oof.covered,
        "test": np.packbits(test.before, axis=-1),
        "checkpoint": np.array(stamp),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, **saved)
    os.replace(partial, path)
    return saved


def parse_setting(text: str) -> AssemblySettings:
    block = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        block[key] = {"true": True, "false": False}.get(value.lower(), value)
    return AssemblySettings.from_config(block)


def main() -> None:
    default_data = os.environ.get("SALT_DATA_DIR", str(REPO.parent / "shared" / "tgs-salt"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained run dir (one fold)")
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--cache", type=Path, default=REPO / "outputs" / "cache")
    parser.add_argument("--masks", type=Path, default=None, help="where the network's masks are kept")
    parser.add_argument("--setting", action="append", default=None, help="assembly keys, e.g. max_ratio=0.85")
    args = parser.parse_args()
    masks_path = args.masks or REPO / "outputs" / "mosaic_gain" / (Path(args.run).as_posix().replace("/", "_") + ".npz")
    train_rles = read_rles(args.data / "train.csv")
    train_ids = np.array(list(train_rles))
    truth = decode_rles(train_rles, train_ids.tolist())
    saved = predicted_masks(args.run, args.data, args.cache, masks_path, train_ids, truth)
    test_ids = saved["test_ids"]
    oof = np.unpackbits(saved["oof"], axis=-1, count=101).astype(bool)
    test = np.unpackbits(saved["test"], axis=-1, count=101).astype(bool)
    covered = saved["covered"]
    post = PostprocessSettings.from_config(predict_config().postprocess)
    measure, groups = measure_groups(post.measure_folds, args.data, args.cache, train_ids)
    all_ids = [*train_ids.tolist(), *test_ids.tolist()]
    train_set, oof_set = set(train_ids.tolist()), set(train_ids[covered].tolist())
    print(f"run {args.run}: {int(covered.sum())} out-of-fold tiles; rules measured on {measure.kind} groups, k={measure.k}")
    for text in args.setting or [""]:
        settings = parse_setting(text)
        start = time.perf_counter()
        table = mosaics_for(args.data, args.cache, settings, log=lambda line: None)
        seconds = time.perf_counter() - start
        grid = MosaicGrid.from_table(table, all_ids)
        measured = measure_rules(post.enabled(), truth=truth, oof=oof, covered=covered, groups=groups, grid=grid, test=test, keep=post.keep)
        gains = ", ".join(
            f"{m.name} {m.sequence_gain:+.4f}{f' ({m.tiles_changed} tiles)' if m.kept else ' (off)'}" for m in measured.measures
        )
        oof_placed = int(table.id.isin(oof_set).sum())
        vertical = sum(m.sequence_gain for m in measured.measures if m.kept and m.name.startswith("vertical"))
        print(
            f"[{text or 'defaults'}] {len(table):,} tiles in {table.mosaic_id.nunique()} mosaics "
            f"({int(table.id.isin(train_set).sum()):,} train, {oof_placed} out-of-fold; {seconds:.1f} s): "
            f"{measured.score_before:.4f} -> {measured.score_after:.4f} "
            f"(gain {measured.score_after - measured.score_before:+.4f}, vertical rules {vertical:+.4f}); {gains}"
        )


if __name__ == "__main__":
    main()
