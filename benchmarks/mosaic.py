"""Mosaic assembly: accuracy on synthetic sections with a known layout, and the real data.

    python benchmarks/mosaic.py [--data DIR] [--seeds 1 2 3] [--sections 12 --cols 20 --rows 12]
                                [--no-synthetic] [--no-real] [--sweep]

Synthetic: for each seed, sections of cols × rows tiles are generated (with the salt-only
tiles dropped and the no-data wedges kept, as `salt.synthetic` makes them), assembled, and
the neighbour pairs of the result compared with the true layout: recall over all true
pairs, over pairs of two usable tiles (constant and near-constant tiles are left out by
design), and the number of wrong pairs.

Real (the competition data, ../shared/tgs-salt or $SALT_DATA_DIR): wall time of reading
the 22,000 PNGs and of the assembly itself (histogram matching included), tiles placed in
mosaics of at least 2 tiles, collisions, and the mean agreement of train masks along
train–train seams. `--sweep` adds, per band of the ratio test, how many mutual-best links
there are and which share of them closes a 2×2 square of mutual-best links: a wrong link
almost never does, so the share estimates the band's precision (relative to the best band).
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

from salt import synthetic  # noqa: E402
from salt.data.tiles import load_split  # noqa: E402
from salt.mosaic import AssemblySettings, assemble_tiles, mosaics_for  # noqa: E402
from salt.mosaic.edges import DIRECTION_NAMES, DIRECTIONS  # noqa: E402
from salt.mosaic.quality import neighbour_pairs, score_pairs, seam_agreement  # noqa: E402


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def placed_pairs(layout) -> np.ndarray:
    return neighbour_pairs(np.where(layout.sizes() >= 2, layout.mosaic, -1), layout.x, layout.y)


def synthetic_benchmark(seeds: list[int], sections: int, cols: int, rows: int, settings: AssemblySettings) -> None:
    print(f"synthetic: {sections} sections of {cols} x {rows} tiles per seed")
    totals = np.zeros(4, dtype=np.int64)  # true, true usable, correct usable, wrong
    for seed in seeds:
        tiles = synthetic.generate_tiles(seed=seed, sections=sections, section_cols=cols, section_rows=rows)
        images = np.stack([t.image for t in tiles])
        truth = neighbour_pairs(np.array([t.mosaic_id for t in tiles]), np.array([t.x for t in tiles]), np.array([t.y for t in tiles]))
        start = time.perf_counter()
        result = assemble_tiles(images, settings)
        seconds = time.perf_counter() - start
        found = placed_pairs(result.layout)
        usable = truth[result.usable[truth[:, 0]] & result.usable[truth[:, 1]]]
        every, among_usable = score_pairs(found, truth), score_pairs(found, usable)
        totals += [every.true, among_usable.true, among_usable.correct, every.wrong]
        print(
            f"  seed {seed}: {len(tiles):,} tiles ({int((~result.usable).sum())} left out as near-constant), "
            f"{every.true:,} true pairs: recall {every.recall:.4f} of all, {among_usable.recall:.4f} of "
            f"{among_usable.true:,} between usable tiles; wrong pairs {every.wrong}; {seconds:.1f} s"
        )
    print(
        f"  all seeds: recall {totals[2] / totals[0]:.4f} of all true pairs, {totals[2] / totals[1]:.4f} of pairs "
        f"between usable tiles, {totals[3]} wrong pairs"
    )


def real_benchmark(data_dir: Path, settings: AssemblySettings, sweep: bool) -> None:
    print(f"real: {data_dir} ({load()})")
    start = time.perf_counter()
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    read_seconds = time.perf_counter() - start
    images = np.concatenate([train.images, test.images])
    n_train = len(train)
    start = time.perf_counter()
    result = assemble_tiles(images, settings)
    assembly_seconds = time.perf_counter() - start
    layout = result.layout
    sizes = layout.sizes()
    placed = sizes >= 2
    cells = set(zip(layout.mosaic[placed].tolist(), layout.x[placed].tolist(), layout.y[placed].tolist()))
    pairs = placed_pairs(layout)
    masks = np.zeros((len(images), 101, 101), dtype=bool)
    masks[:n_train] = train.masks
    labelled = np.arange(len(images)) < n_train
    agreement, seams = seam_agreement(pairs, masks, labelled)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, n_train, 5000), rng.integers(0, n_train, 5000)
    chance = float((np.concatenate([masks[a, -1, :] == masks[b, 0, :], masks[a, :, -1] == masks[b, :, 0]])).mean())
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.timings.items())
    print(f"  read {len(images):,} tiles: {read_seconds:.1f} s; assembly {assembly_seconds:.1f} s ({steps})")
    print(f"  total from PNGs: {read_seconds + assembly_seconds:.1f} s ({load()})")
    print(
        f"  placed {int(placed.sum()):,} tiles in {len(np.unique(layout.mosaic[placed])):,} mosaics of >= 2 "
        f"(largest {int(sizes.max())}); {int((~result.usable).sum())} tiles left out as near-constant; "
        f"collisions {int(placed.sum()) - len(cells)}"
    )
    print(f"  neighbour pairs {len(pairs):,}; train-train seams {seams}: mask agreement {agreement:.4f} (random train pairs: {chance:.4f})")
    size_bins = [2, 3, 5, 10, 50, 101, 10**6]
    counts = np.bincount(layout.mosaic[placed])
    counts = counts[counts >= 2]
    print("  mosaic sizes: " + ", ".join(f"{lo}-{hi - 1}: {int(((counts >= lo) & (counts < hi)).sum())}" for lo, hi in zip(size_bins, size_bins[1:])))
    if sweep:
        ratio_sweep(result)


def ratio_sweep(result) -> None:
    """Per ratio band of mutual-best links: count and share closing a mutual 2×2 square."""
    from salt.mosaic.evidence import closed_squares

    evidence = result.evidence
    closed = closed_squares(evidence.links, len(result.usable))
    bands = [0, 0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0001]
    for d in DIRECTIONS:
        links = evidence.links[d]
        mutual = links.mutual
        print(f"  {DIRECTION_NAMES[d]} mutual-best links by ratio: band, count, share in a closed square")
        for lo, hi in zip(bands, bands[1:]):
            sel = mutual & (links.ratio >= lo) & (links.ratio < hi)
            share = closed[d][sel].mean() if sel.any() else float("nan")
            print(f"    [{lo:.2f}, {hi:.2f}): {int(sel.sum()):5d}  {share:.3f}")


def cache_benchmark(data_dir: Path, settings: AssemblySettings) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        mosaics_for(data_dir, cache, settings, log=lambda _: None)
        first = time.perf_counter() - start
        start = time.perf_counter()
        mosaics_for(data_dir, cache, settings, log=lambda _: None)
        second = time.perf_counter() - start
    print(f"  mosaics_for: {first:.1f} s building, {second:.2f} s from the cache ({load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("SALT_DATA_DIR", str(REPO.parent / "shared" / "tgs-salt"))
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--sections", type=int, default=12)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--cache", action="store_true", help="also time mosaics_for, building and cached")
    parser.add_argument("--sweep", action="store_true", help="ratio bands of mutual-best links on the real data")
    parser.add_argument("--max-ratio", type=float, default=None, help="override assembly.max_ratio")
    args = parser.parse_args()
    settings = AssemblySettings() if args.max_ratio is None else AssemblySettings(max_ratio=args.max_ratio)
    print(f"settings: {settings}")
    if not args.no_synthetic:
        synthetic_benchmark(args.seeds, args.sections, args.cols, args.rows, settings)
    if not args.no_real:
        if not (args.data / "train.csv").is_file():
            print(f"real: skipped, no competition data at {args.data}")
        else:
            real_benchmark(args.data, settings, args.sweep)
            if args.cache:
                cache_benchmark(args.data, settings)


if __name__ == "__main__":
    main()
