"""Pad every tile of the competition data (train + test) and compare with skimage.

    python benchmarks/padding.py [--data-dir ../shared/tgs-salt] [--size 148] [--sample 20]
                                 [--figure outputs/padding_modes.png]

Prints: the time to read the tiles (not part of padding), the time to build the
biharmonic operator, the time to pad all images and all training masks, skimage's
`inpaint_biharmonic` time per tile on a sample measured in the same run, the speed-up
(skimage's per-tile time × tiles / our total time, operator build included), the largest
difference from skimage on the sample, and peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from skimage.restoration import inpaint_biharmonic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from salt.data.padding import PADDING_MODES, biharmonic_border, pad_masks, pad_tiles  # noqa: E402
from salt.data.tiles import load_split  # noqa: E402
from salt.geometry import TILE_SIZE, TileGeometry  # noqa: E402


def skimage_pad(tile: np.ndarray, geometry: TileGeometry) -> np.ndarray:
    size = geometry.padded_size
    frame = np.zeros((size, size), dtype=tile.dtype)
    frame[geometry.tile_window] = tile
    unknown = np.ones((size, size), dtype=bool)
    unknown[geometry.tile_window] = False
    return inpaint_biharmonic(frame, unknown)


def peak_memory_gb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def save_figure(path: Path, tiles: np.ndarray, masks: np.ndarray, size: int) -> None:
    """A grid: one row per tile, one column per padding mode, the tile outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    geometry = TileGeometry(padded_size=size, crop_size=TILE_SIZE)
    rows, cols = len(tiles), len(PADDING_MODES) + 1
    figure, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    lo = geometry.pad_before - 0.5
    for j, mode in enumerate(PADDING_MODES):
        padded = pad_tiles(tiles, size, mode)
        padded_masks = pad_masks(masks, size, mode)
        for i in range(rows):
            ax = axes[i, j]
            ax.imshow(padded[i], cmap="gray", vmin=0, vmax=1)
            ax.contour(padded_masks[i], levels=[0.5], colors="red", linewidths=0.6)
            ax.add_patch(matplotlib.patches.Rectangle((lo, lo), TILE_SIZE, TILE_SIZE, fill=False, ec="cyan", lw=0.6))
            ax.set_axis_off()
            if i == 0:
                ax.set_title(mode, fontsize=9)
    for i in range(rows):
        axes[i, -1].imshow(skimage_pad(tiles[i], geometry), cmap="gray", vmin=0, vmax=1)
        axes[i, -1].set_axis_off()
    axes[0, -1].set_title("skimage", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("SALT_DATA_DIR", str(REPO.parent / "shared" / "tgs-salt"))
    parser.add_argument("--data-dir", default=default_data)
    parser.add_argument("--size", type=int, default=148)
    parser.add_argument("--sample", type=int, default=20, help="tiles padded by skimage for the comparison")
    parser.add_argument("--chunk", type=int, default=None, help="tiles per matrix product (default: the library's)")
    parser.add_argument("--figure", type=Path, default=None, help="also save a PNG of a few tiles in every mode")
    args = parser.parse_args()

    start = time.perf_counter()
    train, test = load_split(args.data_dir, "train"), load_split(args.data_dir, "test")
    images = np.concatenate([train.images, test.images])
    print(f"read {len(train):,} train + {len(test):,} test tiles: {time.perf_counter() - start:.2f} s (not counted)")

    start = time.perf_counter()
    biharmonic_border(args.size)
    build = time.perf_counter() - start
    print(f"biharmonic operator for {args.size}×{args.size}: {build:.2f} s")

    chunk = {} if args.chunk is None else {"chunk_size": args.chunk}
    start = time.perf_counter()
    padded = pad_tiles(images, args.size, **chunk)
    pad_images = time.perf_counter() - start
    print(f"pad {len(images):,} images: {pad_images:.2f} s ({1e3 * pad_images / len(images):.3f} ms per tile)")
    start = time.perf_counter()
    pad_masks(train.masks, args.size, **chunk)
    pad_train_masks = time.perf_counter() - start
    print(f"pad {len(train):,} masks: {pad_train_masks:.2f} s")
    total = build + pad_images
    print(f"all {len(images):,} images padded to {args.size} (operator build included): {total:.2f} s")

    geometry = TileGeometry(padded_size=args.size, crop_size=TILE_SIZE)
    sample = np.random.default_rng(0).choice(len(images), size=min(args.sample, len(images)), replace=False)
    start = time.perf_counter()
    reference = [skimage_pad(images[i], geometry) for i in sample]
    per_tile = (time.perf_counter() - start) / len(sample)
    worst = max(float(np.abs(padded[i] - ref).max()) for i, ref in zip(sample, reference))
    print(f"skimage inpaint_biharmonic: {1e3 * per_tile:.1f} ms per tile ({len(sample)} tiles), "
          f"{per_tile * len(images):.0f} s for all")
    print(f"speed-up: {per_tile * len(images) / total:.0f}× (per tile, excluding the build: "
          f"{per_tile * len(images) / pad_images:.0f}×)")
    print(f"max abs difference from skimage on the sample: {worst:.2e}")
    print(f"peak resident memory: {peak_memory_gb():.2f} GiB")

    if args.figure is not None:
        # Tiles with some salt, so the padded masks (red outline) show too.
        coverage = train.masks.mean(axis=(1, 2))
        candidates = np.flatnonzero((coverage > 0.1) & (coverage < 0.7))
        chosen = np.random.default_rng(1).choice(candidates, size=4, replace=False)
        save_figure(args.figure, train.images[chosen], train.masks[chosen], args.size)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
