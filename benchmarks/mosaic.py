"""Mosaic assembly: accuracy on synthetic sections with a known layout, and the real data.

    python benchmarks/mosaic.py [--data DIR] [--seeds 1 2 3] [--sections 12 --cols 20 --rows 12]
                                [--no-synthetic] [--no-real] [--sweep] [--missing]

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

`--missing` estimates how many lone links a looser ratio test gets wrong. Most tiles have
no neighbour among the 22,000 at all; what a looser test risks is linking such a side to
its best chance match. The seams of the default layout (nearly all right: this estimate
expects 31 wrong lone links among its 7,541) give that situation exactly when their
partner is taken away: for each seam a→b, a's best remaining candidate c (b removed), and c's best
remaining candidate (c's own partner in the layout removed). The false-positive rate at
ratio R is the share of such sides whose chance link would pass the lone-link test
(mutual, both ratios ≤ R, distance ≤ max_distance); times the number of usable sides
with no neighbour in the layout, it is the expected number of wrong lone links. The
true-positive rate is the share of the layout's seams that pass the same test as they are.
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


# Looser ratio limits compared with the settings' own by --missing.
MISSING_RATIOS = [0.75, 0.8, 0.85, 0.87, 0.9]
# Tighter distance limits tried with each ratio limit by --missing.
MISSING_DISTANCES = [0.4, 0.5, 0.6, 0.8]


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


def real_benchmark(data_dir: Path, settings: AssemblySettings, sweep: bool, missing: bool = False) -> None:
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
    # How full the large mosaics are: holes in them would be tiles the matching missed.
    large = np.flatnonzero(np.bincount(layout.mosaic) >= 10)
    tiles = np.isin(layout.mosaic, large)
    boxes = sum(int((layout.x[layout.mosaic == m].max() + 1) * (layout.y[layout.mosaic == m].max() + 1)) for m in large)
    print(f"  mosaics of >= 10 tiles: {len(large)} holding {int(tiles.sum()):,} tiles in bounding boxes of {boxes:,} cells ({tiles.sum() / boxes:.2f} full)")
    if sweep:
        ratio_sweep(result)
    if missing:
        ratios = [settings.max_ratio, *(r for r in MISSING_RATIOS if r > settings.max_ratio)]
        missing_benchmark(result, images, masks, labelled, settings, ratios)


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


def top_candidates(sides, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The k best far sides of every near side and the k best near sides of every far side.

    Returns (near_corr, near_tile, far_corr, far_tile), (N, k) each: correlations, best
    first, and tile indices (-1 where the side is unusable).
    """
    n, width = sides.near.shape
    rows, cols = np.flatnonzero(sides.near_ok), np.flatnonzero(sides.far_ok)
    near_corr, far_corr = np.full((n, k), -np.inf, np.float32), np.full((n, k), -np.inf, np.float32)
    near_tile, far_tile = np.full((n, k), -1), np.full((n, k), -1)
    col_corr, col_tile = np.full((k, cols.size), -np.inf, np.float32), np.full((k, cols.size), -1)
    far = np.ascontiguousarray(sides.far[cols].T)
    for start in range(0, rows.size, 2048):
        chunk = rows[start : start + 2048]
        corr = sides.near[chunk] @ far / np.float32(width)
        corr[chunk[:, None] == cols[None, :]] = -np.inf  # a tile is never its own neighbour
        best = np.argsort(-corr, axis=1)[:, :k]
        near_corr[chunk], near_tile[chunk] = np.take_along_axis(corr, best, 1), cols[best]
        best = np.argsort(-corr, axis=0)[:k]
        merged_corr = np.concatenate([col_corr, np.take_along_axis(corr, best, 0)])
        merged_tile = np.concatenate([col_tile, chunk[best]])
        keep = np.argsort(-merged_corr, axis=0)[:k]
        col_corr, col_tile = np.take_along_axis(merged_corr, keep, 0), np.take_along_axis(merged_tile, keep, 0)
    far_corr[cols], far_tile[cols] = col_corr.T, col_tile.T
    return near_corr, near_tile, far_corr, far_tile


def _without(corr: np.ndarray, tile: np.ndarray, gone: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best tile, best and second correlation of each row once tile `gone` is taken away."""
    keep = tile != gone[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")  # kept candidates first, in rank order
    corr, tile = np.take_along_axis(corr, order, 1), np.take_along_axis(tile, order, 1)
    return tile[:, 0], corr[:, 0], corr[:, 1]


def _distance(corr: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(2.0 - 2.0 * corr, 0.0))


def _ratio(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(_distance(first) / _distance(second), nan=1.0)


def missing_neighbour(result, settings: AssemblySettings, ratios: list[float]) -> dict[float, float]:
    """Per ratio limit: expected wrong lone links (see the module docstring); prints the rates."""
    evidence, layout = result.evidence, result.layout
    pairs = placed_pairs(layout)
    n = len(layout.mosaic)
    expected = dict.fromkeys(ratios, 0.0)
    for d in DIRECTIONS:
        near_corr, near_tile, far_corr, far_tile = top_candidates(evidence.sides[d])
        seams = pairs[pairs[:, 2] == d]
        a, b = seams[:, 0], seams[:, 1]
        above = np.full(n, -1)
        above[b] = a
        # As they are: the seam is the best of both sides.
        mutual = (near_tile[a, 0] == b) & (far_tile[b, 0] == a)
        ratio = np.maximum(_ratio(near_corr[a, 0], near_corr[a, 1]), _ratio(far_corr[b, 0], far_corr[b, 1]))
        distance = _distance(near_corr[a, 0])
        close = distance <= settings.max_distance
        # Partner taken away: a's best remaining candidate c, and c's without its own partner.
        c, first, second = _without(near_corr[a], near_tile[a], b)
        back, back_first, back_second = _without(far_corr[c], far_tile[c], above[c])
        chance_mutual = back == a
        chance_ratio = np.maximum(_ratio(first, second), _ratio(back_first, back_second))
        chance_distance = _distance(first)
        chance_close = chance_distance <= settings.max_distance
        open_sides = int((evidence.sides[d].near_ok & ~np.isin(np.arange(n), a)).sum())
        print(f"  {DIRECTION_NAMES[d]} seams of the layout: {len(a):,}; usable sides with no neighbour: {open_sides:,}")
        for r in ratios:
            tpr = float((mutual & close & (ratio <= r)).mean())
            fpr = float((chance_mutual & chance_close & (chance_ratio <= r)).mean())
            expected[r] += fpr * open_sides
            print(f"    ratio <= {r:.2f}: true-positive rate {tpr:.3f}, false-positive rate {fpr:.4f} -> {fpr * open_sides:.0f} wrong lone links expected")
        # A tighter distance beside a looser ratio: does the pair separate true from chance
        # links better than the ratio alone?
        for r in (*ratios, 1.0):
            cells = []
            for limit in MISSING_DISTANCES:
                tpr = float((mutual & (distance <= limit) & (ratio <= r)).mean())
                fpr = float((chance_mutual & (chance_distance <= limit) & (chance_ratio <= r)).mean())
                cells.append(f"distance <= {limit}: {tpr:.3f} / {fpr * open_sides:.0f}")
            print(f"    ratio <= {r:.2f}, true-positive rate / expected wrong: " + " | ".join(cells))
    return expected


def missing_benchmark(
    base, images: np.ndarray, masks: np.ndarray, labelled: np.ndarray, settings: AssemblySettings, ratios: list[float]
) -> None:
    """Tiles, seams and expected wrong lone links of the assembly at each ratio limit, and
    the mask agreement along the train–train seams each limit adds to `base`, the assembly
    with `settings` (whose ratio limit is the first)."""
    from dataclasses import replace

    print(f"missing-neighbour estimate ({load()})")
    expected = missing_neighbour(base, settings, ratios)
    base_pairs = placed_pairs(base.layout)
    known = set(map(tuple, base_pairs.tolist()))
    print(
        "  max_ratio | tiles placed | mosaics (largest) | seams | added seams | expected wrong lone links | "
        "their share of the added | added train-train seams: mask agreement"
    )
    for r in ratios:
        layout = base.layout if r == settings.max_ratio else assemble_tiles(images, replace(settings, max_ratio=r)).layout
        sizes = layout.sizes()
        placed = sizes >= 2
        pairs = placed_pairs(layout)
        new = np.array([p for p in pairs.tolist() if tuple(p) not in known], dtype=np.int64).reshape(-1, 3)
        agreement, seams = seam_agreement(new, masks, labelled)
        wrong_added = expected[r] - expected[ratios[0]]
        share = wrong_added / len(new) if len(new) else float("nan")
        print(
            f"  {r:.2f} | {int(placed.sum()):,} | {len(np.unique(layout.mosaic[placed])):,} ({int(sizes.max())}) | "
            f"{len(pairs):,} | {len(new):,} | {expected[r]:.0f} | {share:.2f} | {seams}: {agreement:.3f}"
        )


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
    parser.add_argument("--missing", action="store_true", help="expected wrong lone links of looser ratio limits")
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
            real_benchmark(args.data, settings, args.sweep, args.missing)
            if args.cache:
                cache_benchmark(args.data, settings)


if __name__ == "__main__":
    main()
