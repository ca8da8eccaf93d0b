"""Tiles laid out on their mosaics, and the masks the post-processing rules read and edit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from salt.geometry import TILE_SIZE

NO_TILE = -1


@dataclass(frozen=True)
class MosaicGrid:
    """Each mosaic as a (rows, cols) array of tile indices, row 0 at the top; NO_TILE (-1)
    marks a cell without a tile (never seen, or left out).

    The indices point into the arrays of a `TileMasks`.
    """

    cells: tuple[np.ndarray, ...]
    mosaic_ids: tuple[int, ...]

    @classmethod
    def from_table(cls, table: pd.DataFrame, ids: Sequence[str]) -> MosaicGrid:
        """A grid from a mosaic table (id, x = column, y = row, mosaic_id) and the tile ids
        in array order; table rows whose id is not in `ids` are left out."""
        position = {tile_id: i for i, tile_id in enumerate(ids)}
        cells, mosaic_ids = [], []
        for mosaic_id, rows in table.groupby("mosaic_id", sort=True):
            x = rows.x.to_numpy(np.int64)
            y = rows.y.to_numpy(np.int64)
            grid = np.full((y.max() - y.min() + 1, x.max() - x.min() + 1), NO_TILE, dtype=np.int64)
            grid[y - y.min(), x - x.min()] = [position.get(tile_id, NO_TILE) for tile_id in rows.id]
            cells.append(grid)
            mosaic_ids.append(int(mosaic_id))
        return cls(tuple(cells), tuple(mosaic_ids))

    def without(self, absent: np.ndarray) -> MosaicGrid:
        """The same grid with the tiles where `absent` (N,) bool is set taken out."""
        absent = np.asarray(absent, dtype=bool)

        def keep(grid: np.ndarray) -> np.ndarray:
            out = grid.copy()
            present = out >= 0
            out[present & absent[np.maximum(out, 0)]] = NO_TILE
            return out

        return MosaicGrid(tuple(keep(grid) for grid in self.cells), self.mosaic_ids)

    def columns(self) -> Iterator[np.ndarray]:
        """Every column of every mosaic, top to bottom, as (rows,) tile indices."""
        for grid in self.cells:
            yield from grid.T

    def tiles(self) -> np.ndarray:
        """Indices of every tile placed on the grid."""
        placed = [grid[grid >= 0] for grid in self.cells]
        return np.concatenate(placed) if placed else np.zeros(0, dtype=np.int64)


@dataclass
class TileMasks:
    """What the rules work on.

    masks: (N, 101, 101) bool, edited in place: the truth of known tiles, the current
           prediction of the others
    known: (N,) bool, tiles whose mask is the truth (train tiles); rules never edit them
    grid:  where the tiles lie
    """

    masks: np.ndarray
    known: np.ndarray
    grid: MosaicGrid

    def __post_init__(self) -> None:
        if self.masks.ndim != 3 or self.masks.shape[1:] != (TILE_SIZE, TILE_SIZE) or self.masks.dtype != bool:
            raise ValueError(f"masks: expected (N, {TILE_SIZE}, {TILE_SIZE}) bool, got {self.masks.shape} {self.masks.dtype}")
        if self.known.shape != (len(self.masks),):
            raise ValueError(f"known: expected ({len(self.masks)},), got {self.known.shape}")

    def editable(self, tile: int) -> bool:
        """A predicted tile (placed and not known)."""
        return tile >= 0 and not self.known[tile]
