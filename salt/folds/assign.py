"""Fold assignment as pure functions of arrays: random folds stratified by coverage, and
mosaic folds that keep each mosaic's train tiles together (see `salt.folds`)."""

from __future__ import annotations

import numpy as np


def random_folds(coverage: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """(N,) coverage in [0, 1] → (N,) int64 fold in 0..k-1, stratified by coverage.

    Fold sizes differ by at most one; so does each fold's count within any run of tiles
    that are consecutive in coverage order.
    """
    coverage = np.asarray(coverage, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # Random order first, then a stable sort: equal coverages (all the empty tiles) end
    # up in a seeded random order.
    shuffled = rng.permutation(len(coverage))
    order = shuffled[np.argsort(coverage[shuffled], kind="stable")]
    folds = np.empty(len(coverage), dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    for start in range(0, len(order), k):
        block = order[start : start + k]
        # A full block takes every fold once; the last, partial block goes to the
        # smallest folds (all equal here), in a seeded order.
        chosen = rng.permutation(k)[: len(block)]
        folds[block] = chosen
        sizes[chosen] += 1
    return folds


def mosaic_folds(coverage: np.ndarray, mosaic: np.ndarray, k: int = 6, seed: int = 0) -> np.ndarray:
    """Folds that keep mosaics whole and are balanced in size, salt and empty tiles.

    1. Mosaics, largest first, each go to the fold where the sum over folds of squared
       excess over 1/k of the tiles, of the salt and of the empty tiles is least.
    2. The other tiles fill the folds to equal sizes (each fold's quota is what brings it
       to the common level), dealt in order of coverage to the fold furthest behind on
       its quota: each fold gets its share of every stretch of the coverage distribution.
    3. Swaps of two such tiles between folds, best first, even out salt and empty tiles
       while sizes stay as they are, until no swap helps.

    Args:
        coverage: (N,) salt share of each train tile, in [0, 1].
        mosaic: (N,) mosaic id of each train tile, -1 for tiles in no mosaic.
        k: number of folds.
        seed: order of equal-sized mosaics and of equal coverages; ties between folds.

    Returns:
        (N,) int64 fold in 0..k-1.
    """
    coverage = np.asarray(coverage, dtype=np.float64)
    mosaic = np.asarray(mosaic)
    rng = np.random.default_rng(seed)
    balance = _Balance(coverage, k)
    folds = np.full(len(coverage), -1, dtype=np.int64)
    tie_break = rng.permutation(k)
    groups, singles = _units(coverage, mosaic, rng)
    for members in groups:
        cost = balance.cost_of_adding(members)
        best = tie_break[np.argmin(cost[tie_break])]
        balance.add(best, members)
        folds[members] = best
    quota = _water_fill(balance.sizes, len(singles))
    dealt = np.zeros(k, dtype=np.int64)
    for tile in singles:
        progress = np.where(dealt < quota, dealt / np.maximum(quota, 1), np.inf)
        best = tie_break[np.argmin(progress[tie_break])]
        dealt[best] += 1
        balance.add(best, np.array([tile]))
        folds[tile] = best
    _swap_to_balance(folds, coverage, np.isin(np.arange(len(coverage)), singles), balance)
    return folds


class _Balance:
    """Each fold's share of the tiles, the salt and the empty tiles; balanced = 1/k each."""

    def __init__(self, coverage: np.ndarray, k: int) -> None:
        self.coverage, self.k = coverage, k
        self.totals = np.array(
            [max(len(coverage), 1), max(coverage.sum(), 1e-9), max(float((coverage == 0).sum()), 1.0)]
        )
        self.shares = np.zeros((k, 3))

    @property
    def sizes(self) -> np.ndarray:
        return np.round(self.shares[:, 0] * self.totals[0]).astype(np.int64)

    def measures(self, members: np.ndarray) -> np.ndarray:
        cov = self.coverage[members]
        return np.array([len(members), cov.sum(), (cov == 0).sum()]) / self.totals

    def cost_of_adding(self, members: np.ndarray) -> np.ndarray:
        """(k,) increase of the squared excess over 1/k if `members` went to each fold."""
        after = self.shares + self.measures(members)
        target = 1.0 / self.k
        return ((after - target) ** 2).sum(axis=1) - ((self.shares - target) ** 2).sum(axis=1)

    def add(self, fold: int, members: np.ndarray) -> None:
        self.shares[fold] += self.measures(members)


def _water_fill(sizes: np.ndarray, count: int) -> np.ndarray:
    """How many of `count` new tiles each fold takes to make sizes as equal as possible."""
    sizes = sizes.astype(np.int64).copy()
    quota = np.zeros_like(sizes)
    for _ in range(count):
        smallest = int(np.argmin(sizes))
        sizes[smallest] += 1
        quota[smallest] += 1
    return quota


def _swap_to_balance(
    folds: np.ndarray, coverage: np.ndarray, movable: np.ndarray, balance: _Balance, max_swaps: int = 1000
) -> None:
    """Swap movable tiles between folds, best swap first, while it evens out salt and empty
    tiles (sizes do not change). Modifies `folds` in place."""
    k, target = balance.k, 1.0 / balance.k
    salt = balance.shares[:, 1].copy()
    empty = balance.shares[:, 2].copy()
    norm_salt = coverage / balance.totals[1]
    norm_empty = (coverage == 0) / balance.totals[2]
    for _ in range(max_swaps):
        best_gain, best = 1e-15, None
        for i in range(k):
            a = np.flatnonzero((folds == i) & movable)
            for j in range(i + 1, k):
                b = np.flatnonzero((folds == j) & movable)
                if not len(a) or not len(b):
                    continue
                # Moving tile a from i to j and tile b from j to i shifts these amounts.
                d_salt = norm_salt[a][:, None] - norm_salt[b][None, :]
                d_empty = norm_empty[a][:, None] - norm_empty[b][None, :]
                before = (salt[i] - target) ** 2 + (salt[j] - target) ** 2 + (empty[i] - target) ** 2 + (empty[j] - target) ** 2
                after = (
                    (salt[i] - d_salt - target) ** 2
                    + (salt[j] + d_salt - target) ** 2
                    + (empty[i] - d_empty - target) ** 2
                    + (empty[j] + d_empty - target) ** 2
                )
                p, q = np.unravel_index(np.argmax(before - after), after.shape)
                if before - after[p, q] > best_gain:
                    best_gain, best = before - after[p, q], (i, j, a[p], b[q], d_salt[p, q], d_empty[p, q])
        if best is None:
            return
        i, j, tile_a, tile_b, d_salt, d_empty = best
        folds[tile_a], folds[tile_b] = j, i
        salt[i] -= d_salt
        salt[j] += d_salt
        empty[i] -= d_empty
        empty[j] += d_empty


def _units(coverage: np.ndarray, mosaic: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Mosaics as index arrays (largest first, equal sizes in a seeded order), and the
    tiles in no mosaic in order of coverage (equal coverages in a seeded order)."""
    grouped = mosaic >= 0
    labels = np.unique(mosaic[grouped])
    groups = [np.flatnonzero(mosaic == label) for label in rng.permutation(labels)]
    groups.sort(key=len, reverse=True)  # stable: equal sizes keep the seeded order
    singles = rng.permutation(np.flatnonzero(~grouped))
    return groups, singles[np.argsort(coverage[singles], kind="stable")]


