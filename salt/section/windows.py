"""101×101 windows on a regular grid over a section, and their blend back into one map.

Windows start every `stride` samples down and across; the last row and column of windows
sit flush with the section's bottom and right edges, so every sample is covered (a
stride of at most 101 leaves no gap). Each window is cut and min-max normalised on its own
to 8 bits (`salt.synthetic.normalise_tile`), as every competition tile was.

Overlapping predictions are blended with separable Hann weights: a window's centre counts
most, its rim (where the network saw least context) least, never zero. Each sample's
probability is the weighted mean of the windows over it (sum of weight × probability over
the sum of weights), so the weights sum to one wherever a window covers: a constant
prediction blends to the same constant, and without overlap a window's probabilities come
back unchanged.

Samples with no data (a flat 5×5 neighbourhood: muted or missing traces, padding, gaps
between tiles) can be muted to probability 0 as their rows are finished (`no_data`).

`BandBlender` keeps those sums for one band of 101 rows that slides down the section as
window rows arrive in order: rows no later window reaches are finished into the output
map, so the only section-sized array is the map itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from salt.errors import SaltError
from salt.geometry import TILE_SIZE
from salt.synthetic import normalise_tile

# Side of the neighbourhood that must be flat for a sample to count as no data.
NO_DATA_SIZE = 5
# A window whose values span less than this fraction of the section's range is constant
# (black, as a constant competition tile): relative, since amplitudes have any scale.
CONSTANT_FRACTION = 1e-6


def window_origins(length: int, stride: int) -> np.ndarray:
    """(K,) int64 first rows (or columns) of the windows along an axis of `length` samples:
    0, stride, 2·stride, … and a last one flush with the end."""
    if not 1 <= stride <= TILE_SIZE:
        raise SaltError(f"stride={stride}: must lie in 1..{TILE_SIZE} so that the windows cover the whole section")
    if length < TILE_SIZE:
        raise SaltError(f"a section side of {length} samples is smaller than one {TILE_SIZE}-sample window")
    origins = list(range(0, length - TILE_SIZE + 1, stride))
    if origins[-1] != length - TILE_SIZE:
        origins.append(length - TILE_SIZE)
    return np.asarray(origins, dtype=np.int64)


@dataclass(frozen=True)
class WindowGrid:
    """The windows of an (H, W) section: `rows` (Kr,) and `cols` (Kc,) origins."""

    height: int
    width: int
    stride: int

    @property
    def rows(self) -> np.ndarray:
        return window_origins(self.height, self.stride)

    @property
    def cols(self) -> np.ndarray:
        return window_origins(self.width, self.stride)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)


def blend_weights(size: int = TILE_SIZE) -> np.ndarray:
    """(size, size) float64 separable Hann weights, sampled at pixel centres: 1 near the
    centre, about 2.4e-4 at the rim, never zero."""
    ramp = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
    return np.outer(ramp, ramp)


def cut_windows(values: np.ndarray, top: int, lefts: np.ndarray, value_range: float) -> np.ndarray:
    """(n, 101, 101) uint8: the windows at row `top` and columns `lefts`, each min-max
    normalised on its own; `value_range` (max - min of the section) scales the test for a
    constant window."""
    band = values[top : top + TILE_SIZE]
    constant_below = max(CONSTANT_FRACTION * value_range, np.finfo(np.float32).tiny)
    return np.stack([normalise_tile(band[:, left : left + TILE_SIZE], constant_below) for left in lefts])


def section_range(values: np.ndarray, rows: int = 1024) -> float:
    """max - min over the section, read in blocks of `rows` (no section-sized temporary)."""
    low, high = np.inf, -np.inf
    for start in range(0, len(values), rows):
        block = values[start : start + rows]
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    return high - low


class BandBlender:
    """Weighted means of window probabilities, written into `out` band by band.

    Window rows must arrive top to bottom (`add` with non-decreasing `top`). The running
    sums cover the 101 rows from the latest `top`; rows above it are final and go to `out`.

    Args:
        out: (H, W) float array (float32, or float16 to halve a large section's map).
        weights: (101, 101) blend weights (`blend_weights`).
        mute: called with the rows being finished, returns (rows, W) bool samples whose
            probability is set to 0 (e.g. `no_data`); None: none.
    """

    def __init__(self, out: np.ndarray, weights: np.ndarray | None = None, mute: Callable[[slice], np.ndarray] | None = None) -> None:
        self.out = out
        self.mute = mute
        self.weights = blend_weights() if weights is None else np.asarray(weights, dtype=np.float64)
        width = out.shape[1]
        self.sum = np.zeros((TILE_SIZE, width), dtype=np.float64)
        self.weight = np.zeros((TILE_SIZE, width), dtype=np.float64)
        self.top = 0
        self.finished = False
        self.muted = 0  # samples set to 0 by `mute`

    def add(self, top: int, lefts: np.ndarray, probability: np.ndarray) -> None:
        """Add (n, 101, 101) probabilities of the windows at row `top`, columns `lefts`."""
        if top < self.top:
            raise ValueError(f"window row {top} arrived after row {self.top}: rows must come top to bottom")
        self._advance(top)
        for left, window in zip(lefts.tolist(), probability):
            columns = slice(left, left + TILE_SIZE)
            self.sum[:, columns] += self.weights * window
            self.weight[:, columns] += self.weights

    def finish(self) -> np.ndarray:
        """Write the last band; returns `out`."""
        if not self.finished:
            self._flush(min(TILE_SIZE, self.out.shape[0] - self.top))
            self.finished = True
        return self.out

    def _advance(self, top: int) -> None:
        step = top - self.top
        if step == 0:
            return
        self._flush(min(step, TILE_SIZE))
        if step < TILE_SIZE:
            for array in (self.sum, self.weight):
                array[:-step] = array[step:]
                array[-step:] = 0.0
        else:
            self.sum[:] = 0.0
            self.weight[:] = 0.0
        self.top = top

    def _flush(self, rows: int) -> None:
        weight = self.weight[:rows]
        if not (weight > 0).all():
            row = int(np.flatnonzero(~(weight > 0).all(axis=1))[0])
            raise ValueError(f"row {self.top + row} of the section is not covered by any window")
        finished = slice(self.top, self.top + rows)
        self.out[finished] = self.sum[:rows] / weight
        if self.mute is not None:
            muted = self.mute(finished)
            self.out[finished][muted] = 0
            self.muted += int(np.count_nonzero(muted))


def no_data(values: np.ndarray, rows: slice, size: int = NO_DATA_SIZE) -> np.ndarray:
    """(len(rows), W) bool: samples of `rows` that lie in a size×size square holding one
    value (muted or missing traces, padding, gaps): there is no data to find salt in.

    The samples of every flat square, not only their centres, so a gap is muted to its edge.
    """
    margin = 2 * (size // 2)  # the flat test, then spreading each flat centre over its square
    start, stop = rows.indices(len(values))[:2]
    low, high = max(0, start - margin), min(len(values), stop + margin)
    block = values[low:high]
    centres = ndi.maximum_filter(block, size=size, mode="nearest") == ndi.minimum_filter(block, size=size, mode="nearest")
    flat = ndi.maximum_filter(centres, size=size, mode="constant", cval=False)
    return flat[start - low : start - low + (stop - start)]
