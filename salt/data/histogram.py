"""Histogram matching of every tile to the dataset's mean histogram.

Each tile was min-max normalised on its own before publication, so neighbouring tiles of
one seismic section differ in brightness; mapping every tile onto one reference
distribution (the mean histogram of the tiles in hand) makes them comparable, both for
assembling mosaics and as a network input option.

The mapping is the usual cumulative one (as `skimage.exposure.match_histograms`): a grey
level whose cumulative share in the tile is q becomes the level at which the reference's
cumulative distribution reaches q, interpolated linearly between the reference's levels.
Everything runs on per-tile 256-bin histograms, so the whole dataset is a few array ops.
"""

from __future__ import annotations

import numpy as np

from salt.errors import DataError
from salt.geometry import TILE_SIZE

LEVELS = 256  # grey levels of a uint8 tile
_CHUNK = 2048  # tiles per bincount: its int64 index array is chunk × 10,201 × 8 bytes


def tile_histograms(tiles: np.ndarray) -> np.ndarray:
    """(N, 101, 101) uint8 tiles → (N, 256) int64 pixel counts per grey level."""
    tiles = _check_tiles(tiles)
    counts = np.empty((len(tiles), LEVELS), dtype=np.int64)
    for start in range(0, len(tiles), _CHUNK):
        chunk = tiles[start : start + _CHUNK].reshape(-1, TILE_SIZE * TILE_SIZE)
        # Shift each tile's levels into its own block of 256 so one bincount does all.
        shifted = chunk + (np.arange(len(chunk), dtype=np.int64) * LEVELS)[:, None]
        counts[start : start + len(chunk)] = np.bincount(shifted.ravel(), minlength=len(chunk) * LEVELS).reshape(
            -1, LEVELS
        )
    return counts


def constant_tiles(tiles: np.ndarray) -> np.ndarray:
    """(N, 101, 101) → (N,) bool: tiles of a single grey level (the black no-data tiles)."""
    flat = _check_tiles(tiles).reshape(len(tiles), -1)
    return flat.min(axis=1) == flat.max(axis=1)


def mean_histogram(tiles: np.ndarray) -> np.ndarray:
    """The mean of the tiles' normalised histograms, constant tiles left out.

    Args:
        tiles: (N, 101, 101) uint8.

    Returns:
        (256,) float64 summing to 1.

    Raises:
        DataError: when every tile is constant (nothing to learn a histogram from).
    """
    counts = tile_histograms(tiles)
    keep = np.count_nonzero(counts, axis=1) > 1
    if not keep.any():
        raise DataError(f"mean histogram: all {len(counts)} tiles are constant (no image data)")
    # Every tile has the same number of pixels, so the mean of the normalised histograms
    # is the pooled histogram normalised.
    pooled = counts[keep].sum(axis=0).astype(np.float64)
    return pooled / pooled.sum()


def match_histograms(tiles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map each tile's grey levels so its histogram matches ``reference``.

    Args:
        tiles: (N, 101, 101) uint8.
        reference: (256,) nonnegative weights per grey level (e.g. `mean_histogram`).

    Returns:
        (N, 101, 101) float32 in [0, 1] (levels / 255). Constant tiles are returned
        unchanged: a single level has no distribution to match (the cumulative mapping
        would turn a black tile white).
    """
    tiles = _check_tiles(tiles)
    reference = np.asarray(reference, dtype=np.float64)
    if reference.shape != (LEVELS,) or not np.all(np.isfinite(reference)) or reference.min() < 0 or reference.sum() <= 0:
        raise DataError(f"reference histogram of shape {reference.shape}: expected 256 nonnegative weights, not all zero")
    # Only levels the reference uses are interpolation nodes, as in skimage.
    levels = np.flatnonzero(reference)
    reference_cdf = np.cumsum(reference[levels]) / reference.sum()

    out = np.empty(tiles.shape, dtype=np.float32)
    for start in range(0, len(tiles), _CHUNK):
        chunk = tiles[start : start + _CHUNK]
        counts = tile_histograms(chunk)
        source_cdf = np.cumsum(counts, axis=1) / (TILE_SIZE * TILE_SIZE)
        # (n, 256) lookup table: entries of levels absent from a tile are never read.
        table = np.interp(source_cdf, reference_cdf, levels).astype(np.float32) / np.float32(255)
        flat = chunk.reshape(len(chunk), -1)
        matched = np.take_along_axis(table, flat.astype(np.intp), axis=1)
        constant = np.count_nonzero(counts, axis=1) <= 1
        matched[constant] = flat[constant] / np.float32(255)
        out[start : start + len(chunk)] = matched.reshape(chunk.shape)
    return out


def _check_tiles(tiles: np.ndarray) -> np.ndarray:
    tiles = np.asarray(tiles)
    if tiles.dtype != np.uint8 or tiles.ndim != 3 or tiles.shape[1:] != (TILE_SIZE, TILE_SIZE):
        raise DataError(
            f"tiles of shape {tiles.shape} and dtype {tiles.dtype}: expected uint8 (N, {TILE_SIZE}, {TILE_SIZE})"
        )
    return tiles
