"""Seam evidence on real seismic texture with a known answer: every tile cut in two.

    python benchmarks/seam_evidence.py [--data DIR] [--directions bottom right]

The real tiles have no known layout, and synthetic sections have the wrong texture. Cutting
each usable real tile (near-constant ones left out, as the assembly does) into two halves
of 50 rows (or columns) gives 20,000-odd seams whose answer is known, on real texture: each
half is min-max normalised and quantised to 8 bits on its own, as the competition tiles
were. For every descriptor below, each upper half's lower side is matched against every
lower half's upper side (one matrix product), and the benchmark prints

- top-1: the share of sides whose best match is their own other half;
- TP at ratio R: the share of true pairs that pass the lone-link test (mutual best, the
  best / second-best distance ratio of both sides ≤ R);
- FP at ratio R: the same test with every true partner taken away: the share of sides
  whose best chance match passes. On the real data most sides have no neighbour at all,
  so this rate, times about 17,000 open sides, is how many wrong lone links a rule makes.

Descriptors: `seam`, the suite's (`salt.mosaic.edges`: each side's linear extrapolation
half a pixel beyond its edge, standardised); `seam, hubness-corrected`, the same similarity
less each side's mean similarity to its 10 nearest candidates (cross-domain similarity
local scaling: a side that is close to everything is close to nothing); `learned
predictor`, the seam line predicted from the outer 4 rows × 5 columns by a linear filter
fitted by least squares on the tiles' own interior rows (the midpoint of rows r and r+1
from rows r-3..r); `seam + derivative`, the seam descriptor with the across-seam
derivative appended (continuity of the gradient, weight 0.5).
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

from salt.data.tiles import load_split  # noqa: E402
from salt.mosaic.edges import BOTTOM, _standardise, near_constant_tiles, side_descriptors  # noqa: E402

HALF = 50
RATIOS = (0.65, 0.8, 0.9)


def halves(images: np.ndarray, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower halves (N, 50, 101) in [0, 1], each min-max normalised and quantised."""
    x = images if direction == "bottom" else images.transpose(0, 2, 1)

    def normalise(part: np.ndarray) -> np.ndarray:
        part = part.astype(np.float32)
        lo, hi = part.min(axis=(1, 2), keepdims=True), part.max(axis=(1, 2), keepdims=True)
        return np.round((part - lo) / np.maximum(hi - lo, 1) * 255) / 255

    return normalise(x[:, :HALF]), normalise(x[:, HALF : 2 * HALF])


def fitted_filter(x: np.ndarray, rows: int, half_width: int, rng: np.random.Generator, samples: int = 300_000) -> np.ndarray:
    """Least-squares filter (rows, 2·half_width + 1): the midpoint of rows r, r+1 from rows r..r-rows+1."""
    n, height, width = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (half_width, half_width)), mode="edge")
    t, r, c = rng.integers(0, n, samples), rng.integers(rows - 1, height - 1, samples), rng.integers(0, width, samples)
    features = np.stack([padded[t, r - i, c + j] for i in range(rows) for j in range(2 * half_width + 1)], axis=1)
    target = (x[t, r, c] + x[t, r + 1, c]) / 2
    design = np.concatenate([features, np.ones((samples, 1), np.float32)], axis=1)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return coef[:-1].reshape(rows, 2 * half_width + 1)


def filtered(edge_first: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Apply `coef` to (N, rows, W) rows ordered from the edge inwards → (N, W)."""
    rows, size = coef.shape
    w = size // 2
    padded = np.pad(edge_first[:, :rows], ((0, 0), (0, 0), (w, w)), mode="edge")
    out = np.zeros((edge_first.shape[0], edge_first.shape[2]), np.float32)
    for i in range(rows):
        for j in range(size):
            out += coef[i, j] * padded[:, i, j : j + edge_first.shape[2]]
    return out


def top_two(sim: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arg = sim.argmax(axis=axis)
    part = np.partition(sim, sim.shape[axis] - 2, axis=axis)
    if axis == 1:
        return arg, part[:, -1], part[:, -2]
    return arg, part[-1], part[-2]


def distance(similarity: np.ndarray, width: int) -> np.ndarray:
    return np.sqrt(np.maximum(2.0 - 2.0 * similarity / width, 0.0))


def evaluate(near: np.ndarray, far: np.ndarray, hubness: int = 0) -> dict:
    """Top-1 and TP / FP rates of the lone-link test; row i of near and far are true partners."""
    width = near.shape[1]
    sim = near @ far.T
    if hubness:
        rows = np.partition(sim, sim.shape[1] - hubness, axis=1)[:, -hubness:].mean(axis=1)
        cols = np.partition(sim, sim.shape[0] - hubness, axis=0)[-hubness:].mean(axis=0)
        # 2·s − r_a − r_b, shifted back to the scale of a similarity so that distances exist.
        sim = sim - (rows[:, None] + cols[None, :]) / 2 + (rows.mean() + cols.mean()) / 2
    return lone_link_rates(sim, width)


def lone_link_rates(sim: np.ndarray, width: int) -> dict:
    """Top-1 and TP / FP rates of the lone-link test on a similarity matrix whose diagonal
    holds the true pairs (left as it was)."""
    index = np.arange(len(sim))
    diagonal = np.diagonal(sim).copy()
    out = {}
    for missing in (False, True):
        if missing:
            np.fill_diagonal(sim, -np.inf)
        row_arg, row_best, row_second = top_two(sim, 1)
        col_arg, col_best, col_second = top_two(sim, 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            row_ratio = distance(row_best, width) / distance(row_second, width)
            col_ratio = distance(col_best, width) / distance(col_second, width)
        mutual = col_arg[row_arg] == index
        ratio = np.maximum(row_ratio, col_ratio[row_arg])
        if not missing:
            correct = row_arg == index
            out["top1"] = float(correct.mean())
            out["tp"] = {r: float((correct & mutual & (ratio <= r)).mean()) for r in RATIOS}
        else:
            out["fp"] = {r: float((mutual & (ratio <= r)).mean()) for r in RATIOS}
    np.fill_diagonal(sim, diagonal)
    return out


def main() -> None:
    default_data = os.environ.get("SALT_DATA_DIR", str(REPO.parent / "shared" / "tgs-salt"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--directions", nargs="+", default=["bottom", "right"], choices=["bottom", "right"])
    args = parser.parse_args()
    images = np.concatenate([load_split(args.data, split).images for split in ("train", "test")])
    images = images[~near_constant_tiles(images)]
    rng = np.random.default_rng(0)
    print(f"{len(images):,} usable tiles, each cut into two halves of {HALF} rows / columns")
    header = " | ".join([f"TP / FP at ratio <= {r}" for r in RATIOS])
    for direction in args.directions:
        upper, lower = halves(images, direction)
        # The suite's descriptor, and its rule for sides too flat to match (halves are
        # already turned so that the seam runs along rows).
        above, below = side_descriptors(upper, BOTTOM), side_descriptors(lower, BOTTOM)
        ok = above.near_ok & below.far_ok
        upper, lower, near, far = upper[ok], lower[ok], above.near[ok], below.far[ok]
        full = (images if direction == "bottom" else images.transpose(0, 2, 1)).astype(np.float32) / 255
        every = np.ones(len(upper), bool)
        down, up = fitted_filter(full, 4, 2, rng), fitted_filter(full[:, ::-1], 4, 2, rng)
        learned = _standardise(filtered(upper[:, ::-1], down), every), _standardise(filtered(lower, up), every)
        slope = _standardise(upper[:, -1] - upper[:, -2], every), _standardise(lower[:, 1] - lower[:, 0], every)
        norm = np.sqrt(1.25 / 2)  # unit mean square over the 202 values, as `distance` expects
        with_slope = np.concatenate([near, 0.5 * slope[0]], 1) / norm, np.concatenate([far, 0.5 * slope[1]], 1) / norm
        print(f"{direction} seams: {len(upper):,} pairs; descriptor | top-1 | {header}")
        for name, (a, b), hubness in (
            ("seam (the suite's)", (near, far), 0),
            ("seam, hubness-corrected (k = 10)", (near, far), 10),
            ("learned predictor (4 x 5)", learned, 0),
            ("seam + derivative (0.5)", with_slope, 0),
        ):
            start = time.perf_counter()
            result = evaluate(a, b, hubness)
            rates = " | ".join(f"{result['tp'][r]:.3f} / {result['fp'][r]:.4f}" for r in RATIOS)
            print(f"  {name} | {result['top1']:.3f} | {rates}   ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
