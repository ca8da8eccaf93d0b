"""Fill holes: sediment enclosed by salt inside one predicted tile becomes salt.

Salt bodies have no sediment inclusions at this scale; a hole is the network's doubt.
Sediment touching the tile's edge is not a hole (it may open into the neighbour).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from salt.prediction.postprocess.grid import TileMasks


def fill_holes(tiles: TileMasks) -> int:
    """Fill the holes of every predicted tile (placed on the grid or not), in place;
    returns how many tiles changed."""
    changed = 0
    for tile in np.flatnonzero(~tiles.known):
        mask = tiles.masks[tile]
        if not mask.any():
            continue
        filled = ndimage.binary_fill_holes(mask)
        if (filled != mask).any():
            tiles.masks[tile] = filled
            changed += 1
    return changed
