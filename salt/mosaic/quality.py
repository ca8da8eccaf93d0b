"""How good an assembly is: neighbour pairs against a known layout, mask continuity at seams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salt.mosaic.edges import BOTTOM, OFFSETS, RIGHT


def neighbour_pairs(mosaic: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Every pair of tiles in adjacent cells of one mosaic.

    Args:
        mosaic, x, y: (N,) integer mosaic label, column and row of each tile; a negative
            mosaic label means "in no mosaic".

    Returns:
        (P, 3) int64 rows (a, b, direction): tile b is tile a's neighbour below (BOTTOM)
        or to the right (RIGHT).
    """
    mosaic, x, y = (np.asarray(v, dtype=np.int64) for v in (mosaic, x, y))
    placed = np.flatnonzero(mosaic >= 0)
    # One integer per cell so that lookups are a sorted search, not a Python dict.
    span = int(max(x[placed].max(initial=0), y[placed].max(initial=0))) + 2
    key = (mosaic[placed] * span + y[placed]) * span + x[placed]
    order = np.argsort(key)
    sorted_key, sorted_tile = key[order], placed[order]
    if len(sorted_key) and np.any(sorted_key[1:] == sorted_key[:-1]):
        raise ValueError("two tiles share one cell")
    rows = []
    for direction in (BOTTOM, RIGHT):
        dx, dy = OFFSETS[direction]
        target = (mosaic[placed] * span + y[placed] + dy) * span + x[placed] + dx
        where = np.searchsorted(sorted_key, target)
        where = np.minimum(where, len(sorted_key) - 1)
        hit = sorted_key[where] == target if len(sorted_key) else np.zeros(0, dtype=bool)
        rows.append(np.stack([placed[hit], sorted_tile[where[hit]], np.full(hit.sum(), direction)], axis=1))
    return np.concatenate(rows).astype(np.int64)


@dataclass(frozen=True)
class PairScore:
    """Neighbour pairs of an assembly compared with the true layout.

    true: pairs in the true layout; found: pairs in the assembly; correct: found and true;
    wrong: found but not true. recall = correct / true.
    """

    true: int
    found: int
    correct: int
    wrong: int

    @property
    def recall(self) -> float:
        return self.correct / self.true if self.true else 1.0


def score_pairs(found: np.ndarray, truth: np.ndarray) -> PairScore:
    """Compare (P, 3) pair arrays from `neighbour_pairs`."""
    found_set = set(map(tuple, np.asarray(found).tolist()))
    true_set = set(map(tuple, np.asarray(truth).tolist()))
    correct = len(found_set & true_set)
    return PairScore(true=len(true_set), found=len(found_set), correct=correct, wrong=len(found_set) - correct)


def seam_agreement(pairs: np.ndarray, masks: np.ndarray, labelled: np.ndarray) -> tuple[float, int]:
    """Mean share of seam pixels whose masks agree across seams between two labelled tiles.

    For a pair (a above b) the 101 pixels of a's last mask row are compared with b's first
    row (columns for left/right pairs); masks of true neighbours continue across the seam.

    Args:
        pairs: (P, 3) from `neighbour_pairs`, indices into `masks`.
        masks: (N, 101, 101) bool (rows of unlabelled tiles are never read).
        labelled: (N,) bool, tiles whose masks are known.

    Returns:
        (mean agreement in [0, 1], number of seams measured); (nan, 0) without any.
    """
    pairs = np.asarray(pairs)
    pairs = pairs[labelled[pairs[:, 0]] & labelled[pairs[:, 1]]] if len(pairs) else pairs
    if not len(pairs):
        return float("nan"), 0
    a, b, direction = pairs.T
    vertical = direction == BOTTOM
    near = np.where(vertical[:, None], masks[a, -1, :], masks[a, :, -1])
    far = np.where(vertical[:, None], masks[b, 0, :], masks[b, :, 0])
    return float((near == far).mean()), len(pairs)
