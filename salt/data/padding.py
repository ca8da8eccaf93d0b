"""Padding 101×101 tiles (and their masks) to S×S, for the whole dataset at once.

The default mode reproduces `skimage.restoration.inpaint_biharmonic` applied to each tile
centred in an S×S frame whose border is unknown. That call builds and solves a sparse
linear system per tile (≈0.09 s each); but the unknown region is the same for every tile,
so the system matrix is too, and the right-hand side is a fixed linear function of the
tile's outer two rings of pixels (the biharmonic stencil reaches two pixels). The border
is therefore one fixed linear map of those rings, ``border = W @ ring``: `BiharmonicBorder`
builds W once per S with a sparse LU factorisation and applies it to every tile with one
dense matrix product per chunk of tiles.

Values are images in [0, 1] (uint8 input is divided by 255, as `skimage.img_as_float`
does), returned as float32; masks are padded as 0/1 images and thresholded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from salt.errors import DataError, GeometryError
from salt.geometry import TILE_SIZE, TileGeometry

PADDING_MODES = ("biharmonic", "reflect", "edge", "zero")
# numpy.pad's name for each non-biharmonic mode ("reflect" mirrors without repeating the
# edge pixel, like OpenCV's BORDER_REFLECT_101).
_NUMPY_MODES = {"reflect": "reflect", "edge": "edge", "zero": "constant"}

# Tiles per matrix product: large enough for an efficient BLAS call (512 ran ~25 % slower
# on the 2-core machine), small enough that the float32 scratch (chunk × (101² + U) × 4
# bytes, ≈ 180 MB at S = 148) stays modest next to the padded output itself.
DEFAULT_CHUNK = 2048

_STENCIL_RADIUS = 2  # the biharmonic operator (Laplacian of the Laplacian) reaches 2 pixels

# Right-hand-side columns per SuperLU solve. Wider blocks make SuperLU hand its supernode
# updates to a multithreaded BLAS, whose threads spin when the cores are shared: on the
# 2-core machine the 792 columns took 1-5 s in one call and a steady 0.9 s four at a time.
_SOLVE_COLUMNS = 4


@dataclass(frozen=True)
class BiharmonicBorder:
    """The linear map from a tile's outer rings to the biharmonic fill of its padding.

    Attributes:
        geometry: the padded size S this map was built for.
        unknown: (U,) flat indices, into an S×S array, of the padding pixels (raster order).
        ring: (R,) flat indices, into an S×S array, of the tile pixels the fill depends on.
        weights: (U, R) float64; ``fill = weights @ values[ring]`` before clipping.
    """

    geometry: TileGeometry
    unknown: np.ndarray
    ring: np.ndarray
    weights: np.ndarray

    @classmethod
    def build(cls, padded_size: int) -> BiharmonicBorder:
        """Assemble skimage's biharmonic system for the S×S frame and solve it for W."""
        geometry = TileGeometry(padded_size=padded_size, crop_size=TILE_SIZE)
        size = geometry.padded_size
        is_unknown = np.ones((size, size), dtype=bool)
        is_unknown[geometry.tile_window] = False
        unknown = np.flatnonzero(is_unknown)
        if unknown.size == 0:
            empty = np.empty(0, dtype=np.intp)
            return cls(geometry, empty, empty, np.empty((0, 0)))

        rows, cols, coefs = _stencil_entries(is_unknown)
        # Column position of each pixel among the unknowns (-1 for known pixels).
        position = np.full(size * size, -1, dtype=np.intp)
        position[unknown] = np.arange(unknown.size)
        to_unknown = position[cols] >= 0

        system = sparse.csc_array(
            (coefs[to_unknown], (rows[to_unknown], position[cols[to_unknown]])),
            shape=(unknown.size, unknown.size),
        )
        ring = np.unique(cols[~to_unknown])
        ring_position = np.searchsorted(ring, cols[~to_unknown])
        # skimage moves the known pixels' terms to the right-hand side: b = -K @ known.
        known_terms = sparse.csc_array(
            (-coefs[~to_unknown], (rows[~to_unknown], ring_position)),
            shape=(unknown.size, ring.size),
        )
        factors = sparse_linalg.splu(system)
        rhs = known_terms.toarray()
        weights = np.empty_like(rhs)
        for start in range(0, ring.size, _SOLVE_COLUMNS):
            block = slice(start, start + _SOLVE_COLUMNS)
            weights[:, block] = factors.solve(np.asfortranarray(rhs[:, block]))
        return cls(geometry, unknown, ring, weights)

    def fill(self, tiles: np.ndarray, out: np.ndarray, work: np.ndarray | None = None) -> None:
        """Write the clipped biharmonic border of each tile into ``out``.

        Args:
            tiles: (n, 101, 101) float32 values.
            out: (n, S, S) float32; the padding pixels are overwritten, the rest untouched.
            work: optional (≥ n, U) float32 scratch, reused across chunks so that each
                chunk does not fault in fresh pages for its product.
        """
        n = len(tiles)
        size = self.geometry.padded_size
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous: the border is written through a flat view")
        framed = out.reshape(n, size * size)
        ring_values = _ring_values(tiles, self.geometry, self.ring)
        border = np.empty((n, self.unknown.size), np.float32) if work is None else work[:n]
        np.matmul(ring_values, self._weights32.T, out=border)
        # skimage clips the result to the range of the known pixels, per image.
        flat_tiles = tiles.reshape(n, -1)
        np.clip(border, flat_tiles.min(axis=1, keepdims=True), flat_tiles.max(axis=1, keepdims=True), out=border)
        _scatter_border(border, framed, self.geometry)

    @functools.cached_property
    def _weights32(self) -> np.ndarray:
        # float32 halves the cost of the product. A row of weights has an L1 norm of at
        # most ~25, so on values in [0, 1] the rounding stays around 1e-5 at worst (noise
        # tiles; smooth ones ~1e-6), inside the 1e-4 agreement with skimage.
        return self.weights.astype(np.float32)


@functools.lru_cache(maxsize=4)
def biharmonic_border(padded_size: int) -> BiharmonicBorder:
    """The (memoised) `BiharmonicBorder` for padded size S; building it takes ≈1 s at 148."""
    return BiharmonicBorder.build(padded_size)


def pad_tiles(
    tiles: np.ndarray,
    padded_size: int = 148,
    mode: str = "biharmonic",
    *,
    chunk_size: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Pad 101×101 tiles to S×S, the tile centred.

    Args:
        tiles: (N, 101, 101) or (101, 101); uint8 (0–255, scaled to [0, 1]), bool, or float
            values in [0, 1].
        padded_size: S ≥ 101, pixels.
        mode: one of `PADDING_MODES`. ``biharmonic`` equals skimage's `inpaint_biharmonic`
            of the tile in an S×S frame whose border is unknown, to ~1e-5 (float32 products).
        chunk_size: tiles per matrix product (bounds the temporary memory).

    Returns:
        (N, S, S) or (S, S) float32.
    """
    geometry, batch, single = _prepare(tiles, padded_size, mode)
    out = np.empty((len(batch), geometry.padded_size, geometry.padded_size), dtype=np.float32)
    border = biharmonic_border(geometry.padded_size) if mode == "biharmonic" else None
    step = max(1, min(int(chunk_size), len(batch)))
    # Scratch reused by every chunk: fresh temporaries would fault in new pages each time,
    # which costs as much as the arithmetic here.
    values = np.empty((step, TILE_SIZE, TILE_SIZE), dtype=np.float32)
    work = None if border is None else np.empty((step, border.unknown.size), dtype=np.float32)
    for start in range(0, len(batch), step):
        chunk = _as_float32(batch[start : start + step], values)
        target = out[start : start + step]
        if border is None:
            target[...] = np.pad(chunk, ((0, 0), *geometry.pad_width), mode=_NUMPY_MODES[mode])
        else:
            target[(slice(None), *geometry.tile_window)] = chunk
            border.fill(chunk, target, work)
    return out[0] if single else out


def pad_masks(
    masks: np.ndarray,
    padded_size: int = 148,
    mode: str = "biharmonic",
    *,
    threshold: float = 0.7,
    chunk_size: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Pad 101×101 binary masks to S×S the same way as their images.

    The mask is padded as a 0/1 image with `pad_tiles`, then ``> threshold`` is salt; for
    the copying modes (reflect, edge, zero) the threshold changes nothing.

    Args:
        masks: (N, 101, 101) or (101, 101); bool, or any dtype where nonzero is salt.
        threshold: in [0, 1); the original solution used 0.7.

    Returns:
        (N, S, S) or (S, S) bool.
    """
    if not 0.0 <= threshold < 1.0:
        raise GeometryError(f"mask threshold {threshold}: must lie in [0, 1)")
    masks = np.asarray(masks)
    padded = pad_tiles(masks != 0, padded_size, mode, chunk_size=chunk_size)
    return padded > threshold


# --- building the system ---------------------------------------------------------------


def _stencil_entries(is_unknown: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The biharmonic equation of every unknown pixel, as skimage writes it.

    Row k (the k-th unknown pixel in raster order) holds ∆²δ evaluated on the 5×5
    neighbourhood of the pixel, cut at the image edge, where the cut kernel is computed
    by `scipy.ndimage.laplace` (mode 'reflect') on the cut window, exactly as
    `skimage.restoration.inpaint` does, and only its nonzero entries are kept.

    Returns:
        rows, flat pixel indices and coefficients (float64) of the nonzero entries.
    """
    height, width = is_unknown.shape
    pixel_rows, pixel_cols = np.nonzero(is_unknown)
    # The cut window of a pixel depends on its row only through (start, stop) of the
    # window along that axis, so pixels share kernels by that key: at most 5×5 kernels.
    row_lo, row_hi = _window(pixel_rows, height)
    col_lo, col_hi = _window(pixel_cols, width)
    keys = np.stack([row_hi - row_lo, pixel_rows - row_lo, col_hi - col_lo, pixel_cols - col_lo], axis=1)
    kernels, which = np.unique(keys, axis=0, return_inverse=True)
    which = which.reshape(-1)

    rows, cols, coefs = [], [], []
    for k, (win_h, centre_r, win_w, centre_c) in enumerate(kernels):
        members = np.flatnonzero(which == k)
        delta = np.zeros((win_h, win_w))
        delta[centre_r, centre_c] = 1.0
        kernel = ndi.laplace(ndi.laplace(delta))
        offset_r, offset_c = np.nonzero(kernel)
        # Every (member, kernel entry) pair, member-major.
        r = row_lo[members, None] + offset_r[None, :]
        c = col_lo[members, None] + offset_c[None, :]
        rows.append(np.repeat(members, offset_r.size))
        cols.append((r * width + c).reshape(-1))
        coefs.append(np.tile(kernel[offset_r, offset_c], members.size))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(coefs)


def _window(index: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop of the stencil window around each index, cut to [0, length)."""
    return np.maximum(index - _STENCIL_RADIUS, 0), np.minimum(index + _STENCIL_RADIUS + 1, length)


# --- applying it -----------------------------------------------------------------------


def _ring_values(tiles: np.ndarray, geometry: TileGeometry, ring: np.ndarray) -> np.ndarray:
    """(n, 101, 101) tiles → (n, R) values at the ring's flat indices of the S×S frame."""
    size = geometry.padded_size
    ring_r, ring_c = np.divmod(ring, size)
    return np.ascontiguousarray(tiles[:, ring_r - geometry.pad_before, ring_c - geometry.pad_before])


def _scatter_border(border: np.ndarray, framed: np.ndarray, geometry: TileGeometry) -> None:
    """Write (n, U) border values, in raster order of the padding pixels, into (n, S²).

    In raster order the padding is: `pad_before` full rows, then per tile row the left and
    right strips, then `pad_after` full rows; slicing those blocks avoids a fancy-index
    scatter over every pixel.
    """
    n = len(border)
    size, before, after = geometry.padded_size, geometry.pad_before, geometry.pad_after
    top = before * size
    sides = TILE_SIZE * (before + after)
    framed[:, :top] = border[:, :top]
    framed[:, framed.shape[1] - after * size :] = border[:, top + sides :]
    if sides:
        strips = border[:, top : top + sides].reshape(n, TILE_SIZE, before + after)
        middle = framed[:, top : top + TILE_SIZE * size].reshape(n, TILE_SIZE, size)
        middle[:, :, :before] = strips[:, :, :before]
        middle[:, :, size - after :] = strips[:, :, before:]


def _prepare(tiles: np.ndarray, padded_size: int, mode: str) -> tuple[TileGeometry, np.ndarray, bool]:
    """Check the arguments; return the geometry, an (N, 101, 101) view, and whether the
    input was a single tile."""
    if mode not in PADDING_MODES:
        raise GeometryError(f"padding mode {mode!r}: must be one of {', '.join(PADDING_MODES)}")
    geometry = TileGeometry(padded_size=padded_size, crop_size=TILE_SIZE)
    tiles = np.asarray(tiles)
    single = tiles.ndim == 2
    batch = tiles[None] if single else tiles
    if batch.ndim != 3 or batch.shape[1:] != (TILE_SIZE, TILE_SIZE):
        raise DataError(
            f"tiles of shape {tiles.shape}: expected (N, {TILE_SIZE}, {TILE_SIZE}) or ({TILE_SIZE}, {TILE_SIZE})"
        )
    if not (np.issubdtype(batch.dtype, np.number) or batch.dtype == bool):
        raise DataError(f"tiles of dtype {batch.dtype}: expected uint8, bool or float values")
    return geometry, batch, single


def _as_float32(chunk: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """uint8 → [0, 1] as skimage's img_as_float; bool → 0/1; floats as they are.

    Written into the first ``len(chunk)`` tiles of the float32 ``scratch``, which is returned.
    """
    out = scratch[: len(chunk)]
    if chunk.dtype == np.uint8:
        np.divide(chunk, np.float32(255), out=out)
    else:
        out[...] = chunk
    return out
