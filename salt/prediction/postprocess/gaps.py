"""Fill gaps in a column: between two train tiles of one mosaic column whose facing edges
agree (the same number of salt runs), the predicted tiles in between get the runs
interpolated linearly from the upper tile's bottom row to the lower tile's top row.
"""

from __future__ import annotations

import numpy as np

from salt.geometry import TILE_SIZE
from salt.prediction.postprocess.edges import salt_runs
from salt.prediction.postprocess.grid import TileMasks


def fill_column_gaps(tiles: TileMasks, *, max_tiles: int = 3) -> int:
    """Interpolate salt between agreeing train tiles at most `max_tiles` cells apart, in
    place; returns tiles changed."""
    changed = 0
    for column in tiles.grid.columns():
        anchors = [row for row, tile in enumerate(column) if tile >= 0 and tiles.known[tile]]
        for upper, lower in zip(anchors, anchors[1:]):
            between = lower - upper - 1
            if not 1 <= between <= max_tiles:
                continue
            top = salt_runs(tiles.masks[column[upper]][-1])
            bottom = salt_runs(tiles.masks[column[lower]][0])
            if len(top) == 0 or len(top) != len(bottom):
                continue
            for offset, tile in enumerate(column[upper + 1 : lower]):
                if not tiles.editable(tile):
                    continue
                mask = interpolated_runs(top, bottom, between, offset)
                if (tiles.masks[tile] != mask).any():
                    tiles.masks[tile] = mask
                    changed += 1
    return changed


def interpolated_runs(top: np.ndarray, bottom: np.ndarray, between: int, offset: int) -> np.ndarray:
    """(101, 101) bool mask of the `offset`-th of `between` tiles stacked between a row with
    salt runs `top` (K, 2) and, further down, a row with runs `bottom` (K, 2).

    Pixel rows are counted from the upper row (0) to the lower one (between·101 + 1); run
    k of each row in between spans the linear interpolation of its two ends.
    """
    span = between * TILE_SIZE + 1
    rows = offset * TILE_SIZE + 1 + np.arange(TILE_SIZE)
    t = (rows / span)[:, None, None]  # (101, 1, 1)
    ends = top[None].astype(np.float64) * (1 - t) + bottom[None].astype(np.float64) * t  # (101, K, 2)
    ends = np.rint(ends).astype(np.int64)
    columns = np.arange(TILE_SIZE)[None, None, :]
    inside = (columns >= ends[..., 0:1]) & (columns < ends[..., 1:2])  # (101, K, 101)
    return inside.any(axis=1)
