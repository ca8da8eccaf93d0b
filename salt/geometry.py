"""Tile geometry: the one place that knows the sizes a tile goes through.

A 101×101 competition tile is padded to ``padded_size`` (the tile centred, the odd pixel of
padding going after it, as the original solution did), the network sees a
``crop_size`` window of that (centred at inference, anywhere that keeps the whole tile
while training), and its output is cropped back to the 101×101 tile. Every other module
asks a `TileGeometry` for offsets and slices instead of doing this arithmetic itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salt.errors import GeometryError

TILE_SIZE = 101  # side of a competition tile, pixels


@dataclass(frozen=True)
class TileGeometry:
    """Sizes, in pixels, of the padded tile and the network's crop of it.

    Requires ``TILE_SIZE <= crop_size <= padded_size``; a `GeometryError` says which
    size is wrong otherwise.
    """

    padded_size: int = 148
    crop_size: int = 128

    def __post_init__(self) -> None:
        for name in ("padded_size", "crop_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise GeometryError(f"{name}={value!r}: must be an integer number of pixels")
        if self.padded_size < TILE_SIZE:
            raise GeometryError(f"padded_size={self.padded_size}: must be at least the tile size {TILE_SIZE}")
        if not TILE_SIZE <= self.crop_size <= self.padded_size:
            raise GeometryError(
                f"crop_size={self.crop_size}: must lie between the tile size {TILE_SIZE} "
                f"and padded_size={self.padded_size}"
            )

    # --- tile → padded -----------------------------------------------------------------

    @property
    def pad_before(self) -> int:
        """Rows (and columns) of padding above (left of) the tile."""
        return (self.padded_size - TILE_SIZE) // 2

    @property
    def pad_after(self) -> int:
        """Rows (and columns) of padding below (right of) the tile; one more than
        `pad_before` when the total padding is odd."""
        return self.padded_size - TILE_SIZE - self.pad_before

    @property
    def pad_width(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((before, after), (before, after))`` for `numpy.pad` on an (H, W) tile."""
        return ((self.pad_before, self.pad_after),) * 2

    @property
    def tile_window(self) -> tuple[slice, slice]:
        """Rows and columns of the tile inside a padded (S, S) array."""
        span = slice(self.pad_before, self.pad_before + TILE_SIZE)
        return span, span

    def unpad(self, padded: np.ndarray) -> np.ndarray:
        """(..., S, S) padded arrays → (..., 101, 101) views of their tiles."""
        self._check_last_two(padded, self.padded_size, "padded array")
        rows, cols = self.tile_window
        return padded[..., rows, cols]

    # --- padded → crop → tile ----------------------------------------------------------

    @property
    def center_crop_start(self) -> int:
        """First row (and column) of the centred crop inside the padded array."""
        return (self.padded_size - self.crop_size) // 2

    @property
    def crop_starts(self) -> range:
        """Crop origins (row or column) that keep the whole tile inside the crop: the
        positions a training-time random crop may draw from."""
        first = max(0, self.pad_before + TILE_SIZE - self.crop_size)
        last = min(self.pad_before, self.padded_size - self.crop_size)
        return range(first, last + 1)

    def crop(self, padded: np.ndarray, start: tuple[int, int] | None = None) -> np.ndarray:
        """(..., S, S) → (..., C, C) view, at ``start=(row, col)`` or centred when None."""
        self._check_last_two(padded, self.padded_size, "padded array")
        row, col = self._crop_origin(start)
        return padded[..., row : row + self.crop_size, col : col + self.crop_size]

    def tile_in_crop(self, start: tuple[int, int] | None = None) -> tuple[slice, slice]:
        """Rows and columns of the tile inside a crop taken at ``start`` (centred when None)."""
        row, col = self._crop_origin(start)
        top, left = self.pad_before - row, self.pad_before - col
        return slice(top, top + TILE_SIZE), slice(left, left + TILE_SIZE)

    def uncrop(self, cropped: np.ndarray, start: tuple[int, int] | None = None) -> np.ndarray:
        """(..., C, C) network outputs → (..., 101, 101) views of the tile they cover."""
        self._check_last_two(cropped, self.crop_size, "cropped array")
        rows, cols = self.tile_in_crop(start)
        return cropped[..., rows, cols]

    # --- helpers -----------------------------------------------------------------------

    def _crop_origin(self, start: tuple[int, int] | None) -> tuple[int, int]:
        if start is None:
            return self.center_crop_start, self.center_crop_start
        row, col = start
        valid = self.crop_starts
        if row not in valid or col not in valid:
            raise GeometryError(
                f"crop start {(row, col)}: must lie in [{valid.start}, {valid.stop - 1}] "
                f"so that the {self.crop_size}×{self.crop_size} crop holds the whole tile"
            )
        return row, col

    @staticmethod
    def _check_last_two(array: np.ndarray, size: int, what: str) -> None:
        if array.ndim < 2 or array.shape[-2:] != (size, size):
            raise GeometryError(f"{what} of shape {array.shape}: expected (..., {size}, {size})")
