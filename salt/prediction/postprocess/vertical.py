"""Vertical boundaries continue: a train mask whose salt boundaries run straight down is
copied into the predicted tiles of its mosaic column.

Downwards the copy runs through consecutive predicted tiles until a gap in the column or a
known tile. Upwards it stops below the mosaic's terminal level (the topmost row holding a
tile where a salt body starts, `terminal_level`), at a predicted tile where salt starts
(its top is inside that tile, so the boundary is not vertical there), at a gap or at a
known tile.
"""

from __future__ import annotations

import numpy as np

from salt.geometry import TILE_SIZE
from salt.prediction.postprocess.edges import is_vertical, salt_top_inside
from salt.prediction.postprocess.grid import TileMasks

# A tile counts for the terminal level only when this share of it is salt: a few stray
# pixels at the bottom edge are no salt top.
TERMINAL_MIN_COVERAGE = 0.05


def terminal_level(tiles: TileMasks, cells: np.ndarray) -> int:
    """The topmost row of `cells` holding a tile whose salt starts inside it (and covers at
    least TERMINAL_MIN_COVERAGE); -1 when there is none."""
    for row in range(cells.shape[0]):
        for tile in cells[row]:
            if tile < 0:
                continue
            mask = tiles.masks[tile]
            if mask.mean() >= TERMINAL_MIN_COVERAGE and salt_top_inside(mask):
                return row
    return -1


def copy_vertical_down(tiles: TileMasks) -> int:
    """Copy each vertical train mask down its column, in place; returns tiles changed."""
    changed = 0
    for column in tiles.grid.columns():
        for row, tile in enumerate(column):
            if tile < 0 or not tiles.known[tile] or not is_vertical(tiles.masks[tile]):
                continue
            for below in column[row + 1 :]:
                if not tiles.editable(below):
                    break
                changed += _set(tiles, below, tiles.masks[tile])
    return changed


def copy_vertical_up(tiles: TileMasks) -> int:
    """Copy each vertical train mask up its column to the terminal level, in place;
    returns tiles changed."""
    changed = 0
    for cells in tiles.grid.cells:
        level = terminal_level(tiles, cells)
        for column in cells.T:
            for row, tile in enumerate(column):
                if tile < 0 or not tiles.known[tile] or not is_vertical(tiles.masks[tile]):
                    continue
                for above in column[level + 1 : row][::-1]:
                    if not tiles.editable(above):
                        break
                    mask = tiles.masks[above]
                    if mask.any() and salt_top_inside(mask):
                        break
                    changed += _set(tiles, above, tiles.masks[tile])
    return changed


def _set(tiles: TileMasks, tile: int, mask: np.ndarray) -> int:
    assert mask.shape == (TILE_SIZE, TILE_SIZE)
    if (tiles.masks[tile] == mask).all():
        return 0
    tiles.masks[tile] = mask
    return 1
