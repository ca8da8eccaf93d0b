"""One 2-D seismic section read from SEG-Y, an 8- or 16-bit PNG/TIFF, or a ``.npy`` array.

A section is an (H, W) array with rows going down (samples, i.e. time or depth) and
columns along the line (traces), the orientation of the competition's tiles. Its values
keep their own scale and type (uint8, uint16 or float32): every window is min-max
normalised on its own later (`salt.section.windows`), so no global scaling is needed.

- SEG-Y (``.sgy``, ``.segy``), through `segyio`: a 2-D line (unstructured, or one inline or
  one crossline) is all its traces side by side; a 3-D cube needs one slice chosen with
  `SegySlice`: an inline or a crossline (by its number in the trace headers), or a time
  slice (by sample position, 0 first; rows are then inlines and columns crosslines).
- PNG / TIFF: 8- or 16-bit greyscale; a colour image whose three channels are equal (as
  the competition's PNGs are) is read as grey; a true colour image, or one with an alpha
  channel, is refused: the suite does not guess amplitudes from a colour map or what
  transparent pixels mean.
- ``.npy``: a 2-D numeric array (rows = samples), loaded without pickles.

Anything wrong (unknown suffix, unreadable, corrupt or truncated file, a cube without a
slice or with one out of range, a colour image, non-finite values, a section smaller
than one 101×101 window) is a `DataError` naming the file and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from salt.data.tables import describe_os_error
from salt.errors import DataError, SaltError
from salt.geometry import TILE_SIZE
from salt.settings import defaults_block, settings_from_block, store_schema

SEGY_SUFFIXES = (".sgy", ".segy")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy",)
# Rows checked for non-finite values at a time: bounds the temporary boolean array.
_FINITE_ROWS = 256


@dataclass(frozen=True)
class SegySlice:
    """Which 2-D section of a SEG-Y cube to read: the ``segy`` config block.

    At most one of inline / crossline (line numbers as in the trace headers) / sample
    (position along the trace, 0 first: a time or depth slice). None of them: the file
    must be a 2-D line. iline_byte, xline_byte: header bytes of the inline and crossline
    numbers (189 and 193 in SEG-Y rev 1).
    """

    inline: int | None = None
    crossline: int | None = None
    sample: int | None = None
    iline_byte: int = 189
    xline_byte: int = 193

    def __post_init__(self) -> None:
        chosen = [name for name in ("inline", "crossline", "sample") if getattr(self, name) is not None]
        if len(chosen) > 1:
            raise SaltError(f"segy: {' and '.join(f'segy.{name}' for name in chosen)} both set; choose one slice of the cube")

    @property
    def chosen(self) -> tuple[str, int] | None:
        for name in ("inline", "crossline", "sample"):
            value = getattr(self, name)
            if value is not None:
                return name, int(value)
        return None

    @classmethod
    def from_config(cls, block) -> SegySlice:
        return settings_from_block(cls, block, "segy")


store_schema("segy", defaults_block(SegySlice))  # the `segy` block of conf/section.yaml


@dataclass(frozen=True)
class Section:
    """values: (H, W) uint8, uint16 or float32, rows = samples down, columns = traces;
    source: the file; description: what was read, for logs and the summary."""

    values: np.ndarray
    source: Path
    description: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape


def read_section(path: str | os.PathLike, segy: SegySlice = SegySlice()) -> Section:
    """The section in `path`, checked: 2-D, finite, at least one window in each direction."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SEGY_SUFFIXES:
        values, description = _read_segy(path, segy)
    elif segy.chosen is not None:
        raise DataError(f"{path}: segy.{segy.chosen[0]} is set but the file is not SEG-Y ({', '.join(SEGY_SUFFIXES)})")
    elif suffix in IMAGE_SUFFIXES:
        values, description = _read_image(path)
    elif suffix in ARRAY_SUFFIXES:
        values, description = _read_array(path)
    else:
        known = ", ".join((*SEGY_SUFFIXES, *IMAGE_SUFFIXES, *ARRAY_SUFFIXES))
        raise DataError(f"{path}: unknown kind of file {suffix or '(no suffix)'}; a section is one of {known}")
    check_section(values, path)
    return Section(values=values, source=path, description=description)


def check_section(values: np.ndarray, path: Path) -> None:
    """`DataError` unless `values` is a finite (H, W) array of at least 101×101."""
    if values.ndim != 2:
        raise DataError(f"{path}: array of shape {values.shape}; a section is 2-D (rows = samples, columns = traces)")
    height, width = values.shape
    if height < TILE_SIZE or width < TILE_SIZE:
        raise DataError(
            f"{path}: section of {height}×{width} samples is smaller than one {TILE_SIZE}×{TILE_SIZE} window"
        )
    if np.issubdtype(values.dtype, np.floating):
        bad = sum(int(np.count_nonzero(~np.isfinite(values[row : row + _FINITE_ROWS]))) for row in range(0, height, _FINITE_ROWS))
        if bad:
            rows = np.flatnonzero([not np.isfinite(values[row]).all() for row in range(height)])
            raise DataError(f"{path}: {bad:,} NaN or infinite value(s) (first in row {rows[0]}); fill or mute them first")


def _read_segy(path: Path, segy: SegySlice) -> tuple[np.ndarray, str]:
    import segyio  # only SEG-Y needs it

    if not path.is_file():
        _raise_os_error(path)
    try:
        handle = segyio.open(str(path), "r", iline=segy.iline_byte, xline=segy.xline_byte, strict=False)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a readable SEG-Y file, corrupt or truncated ({_first_line(exc)})") from None
    try:
        with handle as segy_file:
            return _segy_section(segy_file, path, segy)
    except (RuntimeError, OSError) as exc:
        raise DataError(f"{path}: SEG-Y traces could not be read, corrupt or truncated ({_first_line(exc)})") from None


def _segy_section(f, path: Path, segy: SegySlice) -> tuple[np.ndarray, str]:
    samples = len(f.samples)
    chosen = segy.chosen
    if f.unstructured:
        if chosen is not None:
            raise DataError(f"{path}: segy.{chosen[0]} is set but the file has no inline/crossline geometry (a 2-D line); unset it")
        return _traces_down(f.trace.raw[:]), f"SEG-Y 2-D line of {f.tracecount} traces × {samples} samples"
    ilines, xlines = np.asarray(f.ilines), np.asarray(f.xlines)
    shape = f"{len(ilines)} inlines × {len(xlines)} crosslines × {samples} samples"
    if chosen is None:
        if len(ilines) > 1 and len(xlines) > 1:
            raise DataError(
                f"{path}: a 3-D cube ({shape}); choose one section with segy.inline=N, segy.crossline=N or segy.sample=N"
            )
        return _traces_down(f.trace.raw[:]), f"SEG-Y 2-D line of {f.tracecount} traces × {samples} samples"
    kind, number = chosen
    if kind == "inline":
        if number not in ilines:
            raise DataError(f"{path}: segy.inline={number} is not an inline of the cube ({_range(ilines)}; {shape})")
        return _traces_down(f.iline[number]), f"SEG-Y inline {number} of a cube of {shape}"
    if kind == "crossline":
        if number not in xlines:
            raise DataError(f"{path}: segy.crossline={number} is not a crossline of the cube ({_range(xlines)}; {shape})")
        return _traces_down(f.xline[number]), f"SEG-Y crossline {number} of a cube of {shape}"
    if not 0 <= number < samples:
        raise DataError(f"{path}: segy.sample={number} is out of range (samples 0–{samples - 1}; {shape})")
    return np.ascontiguousarray(f.depth_slice[number], dtype=np.float32), f"SEG-Y time slice at sample {number} of a cube of {shape}"


def _traces_down(traces: np.ndarray) -> np.ndarray:
    """(traces, samples) as segyio returns them → (samples, traces): time going down."""
    return np.ascontiguousarray(np.asarray(traces, dtype=np.float32).T)


def _range(numbers: np.ndarray) -> str:
    low, high = int(numbers.min()), int(numbers.max())
    return f"{low}–{high}" if len(numbers) == high - low + 1 else f"{len(numbers)} numbers from {low} to {high}"


def _read_image(path: Path) -> tuple[np.ndarray, str]:
    data = _read_bytes(path)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt, truncated or not a {path.suffix.upper().lstrip('.')})")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise DataError(f"{path}: {image.dtype} samples; expected an 8- or 16-bit greyscale image (or 32-bit float TIFF)")
    if image.ndim == 3:
        channels = image.shape[2]
        if channels in (2, 4):
            raise DataError(
                f"{path}: image with an alpha channel; save the section as a greyscale image without transparency"
            )
        if channels != 3 or not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])):
            raise DataError(
                f"{path}: colour image; a section is one amplitude per sample: save it as greyscale "
                "(the suite does not guess amplitudes from a colour map)"
            )
        image = np.ascontiguousarray(image[..., 0])
    bits = {np.dtype(np.uint8): "8-bit", np.dtype(np.uint16): "16-bit", np.dtype(np.float32): "32-bit float"}[image.dtype]
    return image, f"{bits} image of {image.shape[0]}×{image.shape[1]} samples"


def _read_array(path: Path) -> tuple[np.ndarray, str]:
    if not path.is_file():
        _raise_os_error(path)
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array, corrupt or truncated ({_first_line(exc)})") from None
    if not isinstance(values, np.ndarray) or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise DataError(f"{path}: array of {getattr(values, 'dtype', type(values))}; a section holds numbers")
    if np.iscomplexobj(values):
        raise DataError(f"{path}: complex values; a section holds real amplitudes")
    if values.ndim == 3:
        raise DataError(
            f"{path}: 3-D array of shape {values.shape}; save one 2-D section (rows = samples, columns = traces), "
            "or give the cube as SEG-Y with segy.inline / segy.crossline / segy.sample"
        )
    described = f"array of shape {values.shape} ({values.dtype})"
    if values.dtype not in (np.uint8, np.uint16):
        values = values.astype(np.float32)
    return values, described


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(describe_os_error(path, exc)) from None
    if not data:
        raise DataError(f"{path}: empty file (0 bytes)")
    return data


def _raise_os_error(path: Path) -> None:
    try:
        path.open("rb").close()
    except OSError as exc:
        raise DataError(describe_os_error(path, exc)) from None
    raise DataError(f"{path}: not a regular file")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
