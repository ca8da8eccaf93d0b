"""Below a full salt edge, nothing: predicted tiles under a train tile whose bottom edge is
all salt are emptied.

The competition's labels mark the top of salt bodies; a tile lying wholly inside salt was
labelled empty (no training tile is all salt), and so is everything further down its
mosaic column.
"""

from __future__ import annotations

from salt.prediction.postprocess.grid import TileMasks


def empty_below_salt(tiles: TileMasks) -> int:
    """Empty every predicted tile below (same column, any distance) a known tile whose
    bottom row is all salt, in place; returns tiles changed."""
    changed = 0
    for column in tiles.grid.columns():
        below_full_edge = False
        for tile in column:
            if tile < 0:
                continue
            if tiles.known[tile]:
                # An empty train tile under the edge is inside the salt too; one with salt
                # is a new body, which the flag follows from here on.
                if tiles.masks[tile].any():
                    below_full_edge = bool(tiles.masks[tile][-1].all())
            elif below_full_edge and tiles.masks[tile].any():
                tiles.masks[tile] = False
                changed += 1
    return changed
