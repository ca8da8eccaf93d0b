"""Nearest-neighbour matching of seam descriptors into candidate links between tiles.

For one kind of seam (a tile above another, or a tile left of another) every usable
`near` side is compared with every usable `far` side by brute force: the descriptors are
standardised, so the squared distance is an affine function of their dot product and the
search is one matrix product per chunk of tiles (22,000 × 22,000 × 101 multiply-adds,
a few seconds with BLAS; a k-d tree does not help at 101 dimensions).

For each side we keep its best partner, its distance and the distance to the second
best, both ways: for tile a the best tile below it, and for tile b the best tile above
it. Every pair that is the best of at least one of its sides becomes a candidate link,
with two measures of confidence:

- the distance, the RMS difference of the standardised descriptors, ``sqrt(2·(1 − r))``
  for correlation r (0.3 ↔ r = 0.955, 0.8 ↔ r = 0.68);
- the ratio of best to second-best distance (Lowe's test) of the side(s) it is best for:
  a side that matches two tiles almost equally well (a side of a tile that has a
  duplicate, a bland side) is ambiguous.

Which candidates become seams is decided by `salt.mosaic.evidence` during assembly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salt.mosaic.edges import DESCRIPTOR_SIZE, SideDescriptors

# Rows of the similarity matrix computed at once: 2048 × 22,000 float32 is 180 MB.
_CHUNK = 2048


@dataclass(frozen=True)
class BestMatches:
    """For each of N sides, its best partner and the two smallest distances.

    partner: (N,) int64 tile index, -1 where the side is unusable or has no usable partner
    best, second: (N,) float32 normalised distances (inf where absent)
    """

    partner: np.ndarray
    best: np.ndarray
    second: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """(N,) best / second-best distance; 0 when the second is infinite, 1 when both are 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.best / self.second
        ratio[np.isinf(self.second) & np.isfinite(self.best)] = 0.0
        ratio[(self.best == 0) & (self.second == 0)] = 1.0
        return ratio


@dataclass(frozen=True)
class Links:
    """Candidate links of one direction: tile `b[i]` may be the neighbour of tile `a[i]`.

    a, b: (L,) int64 tile indices; distance: (L,) float32; ratio: (L,) float32, the larger
    of the best/second ratios of the sides whose best match the pair is; mutual: (L,)
    bool, the pair is the best match of both its sides.
    """

    a: np.ndarray
    b: np.ndarray
    distance: np.ndarray
    ratio: np.ndarray
    mutual: np.ndarray


def best_matches(sides: SideDescriptors) -> tuple[BestMatches, BestMatches]:
    """Best far side for every near side, and best near side for every far side.

    A tile never matches itself. Returns (near → far, far → near), each indexed by tile.
    """
    n = len(sides.near)
    rows = np.flatnonzero(sides.near_ok)
    cols = np.flatnonzero(sides.far_ok)
    forward = _empty(n)
    backward = _empty(n)
    if rows.size == 0 or cols.size == 0:
        return forward, backward
    far = np.ascontiguousarray(sides.far[cols].T)
    col_best = np.full(cols.size, -np.inf, dtype=np.float32)
    col_second = np.full(cols.size, -np.inf, dtype=np.float32)
    col_arg = np.full(cols.size, -1, dtype=np.int64)
    # Where each row tile sits among the columns, to mask out a tile against itself.
    col_of = np.full(n, -1, dtype=np.int64)
    col_of[cols] = np.arange(cols.size)
    for start in range(0, rows.size, _CHUNK):
        chunk = rows[start : start + _CHUNK]
        sim = sides.near[chunk] @ far  # (c, C): D · correlation
        own = col_of[chunk]
        has_own = own >= 0
        sim[np.flatnonzero(has_own), own[has_own]] = -np.inf
        # Per row: best and second best (the best is masked out, then the max taken again).
        arg, first, second = _top_two(sim, axis=1)
        forward.partner[chunk] = np.where(np.isfinite(first), cols[arg], -1)
        forward.best[chunk] = _distance(first)
        forward.second[chunk] = _distance(second)
        # Per column: merge this chunk's top two into the running top two.
        arg, first, second = _top_two(sim, axis=0)
        better = first > col_best
        col_second = np.where(better, np.maximum(col_best, second), np.maximum(col_second, first))
        col_arg = np.where(better, chunk[arg], col_arg)
        col_best = np.where(better, first, col_best)
    backward.partner[cols] = np.where(np.isfinite(col_best), col_arg, -1)
    backward.best[cols] = _distance(col_best)
    backward.second[cols] = _distance(col_second)
    return forward, backward


def candidate_links(forward: BestMatches, backward: BestMatches) -> Links:
    """Every pair that is the best match of at least one of its two sides, once.

    The pair's distance is the same seen from either side (one entry of the matrix); its
    ratio is the larger of the ratios of the sides whose best match it is.
    """
    a = np.flatnonzero(forward.partner >= 0)
    b2 = np.flatnonzero(backward.partner >= 0)
    pairs = np.unique(
        np.concatenate([np.stack([a, forward.partner[a]], axis=1), np.stack([backward.partner[b2], b2], axis=1)]),
        axis=0,
    ).reshape(-1, 2)
    first, second = pairs[:, 0], pairs[:, 1]
    from_a = forward.partner[first] == second
    from_b = backward.partner[second] == first
    ratio = np.maximum(np.where(from_a, forward.ratio[first], 0.0), np.where(from_b, backward.ratio[second], 0.0))
    distance = np.where(from_a, forward.best[first], backward.best[second])
    return Links(
        a=first, b=second, distance=distance.astype(np.float32), ratio=ratio.astype(np.float32), mutual=from_a & from_b
    )


def _empty(n: int) -> BestMatches:
    return BestMatches(
        partner=np.full(n, -1, dtype=np.int64),
        best=np.full(n, np.inf, dtype=np.float32),
        second=np.full(n, np.inf, dtype=np.float32),
    )


def _top_two(sim: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Argmax, max and second max of `sim` along `axis` (sim is restored afterwards)."""
    arg = sim.argmax(axis=axis)
    other = np.arange(sim.shape[1 - axis])
    index = (other, arg) if axis == 1 else (arg, other)
    first = sim[index].copy()
    sim[index] = -np.inf
    second = sim.max(axis=axis)
    sim[index] = first
    return arg, first, second


def _distance(similarity: np.ndarray) -> np.ndarray:
    """Dot product of standardised descriptors → RMS difference ``sqrt(2·(1 − r))``."""
    r = similarity / np.float32(DESCRIPTOR_SIZE)
    return np.sqrt(np.maximum(2.0 - 2.0 * r, 0.0)).astype(np.float32)
