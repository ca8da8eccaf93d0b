"""Synthetic seismic tiles in the competition layout, with their true positions.

    python -m salt.synthetic out=DIR [seed=0 sections=4 section_cols=10 section_rows=6 ...]

A few large seismic sections are drawn: layered, folded reflectors (a random impedance
log convolved with a Ricker wavelet, warped by folds that grow with depth) and salt
bodies (domes, some rising from below as diapirs) with a bright top reflector and a
chaotic, low-amplitude interior, plus noise and, in some sections, a wedge with no data.
Each section is cut into 101x101 tiles, each tile min-max normalised on its own as the
competition's were, and the tiles are shuffled into train and test. Tiles that are all
salt are left out, as the competition's training set has none.

Besides the competition files the dataset has `layout.csv` (id,x,y,mosaic_id; x is the
tile's column and y its row in its section) so mosaic assembly can be checked.
"""

from __future__ import annotations

import csv
import errno
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from salt import rle
from salt.errors import SaltError
from salt.files import atomic_directory, write_png
from salt.geometry import TILE_SIZE


@dataclass(frozen=True)
class Tile:
    id: str
    image: np.ndarray  # (101, 101) uint8
    mask: np.ndarray  # (101, 101) bool
    x: int  # column of the tile in its section
    y: int  # row of the tile in its section
    mosaic_id: int
    depth: int


def ricker(peak_period: float, half_width: int) -> np.ndarray:
    """Ricker wavelet sampled at integer offsets; `peak_period` in pixels."""
    t = np.arange(-half_width, half_width + 1) / peak_period
    a = (np.pi * t) ** 2
    return (1 - 2 * a) * np.exp(-a)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Zero-mean, unit-scale noise varying smoothly over about `cell` pixels."""
    coarse = rng.standard_normal((shape[0] // cell + 3, shape[1] // cell + 3)).astype(np.float32)
    fine = cv2.resize(coarse, (coarse.shape[1] * cell, coarse.shape[0] * cell), interpolation=cv2.INTER_CUBIC)
    return fine[cell : cell + shape[0], cell : cell + shape[1]]


def layered_reflectors(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width) float32 amplitude of folded sedimentary layers."""
    margin = height // 2
    # Impedance log in "geological time": layers 3 to 25 px thick.
    thickness = rng.integers(3, 26, size=2 * (height + 2 * margin) // 3)
    impedance = np.repeat(rng.normal(0, 1, size=len(thickness)), thickness)[: height + 2 * margin + 64]
    reflectivity = np.diff(impedance, prepend=impedance[0])
    trace = np.convolve(reflectivity, ricker(rng.uniform(5, 12), 30), mode="same")
    z, x = np.mgrid[0:height, 0:width].astype(np.float32)
    folds = np.zeros_like(z)
    for _ in range(3):
        wavelength = rng.uniform(0.2, 1.2) * width
        amplitude = rng.uniform(10, 60)
        folds += amplitude * (0.3 + z / height) * np.sin(2 * np.pi * x / wavelength + rng.uniform(0, 2 * np.pi))
    dip = rng.uniform(-0.4, 0.4)
    time = z + folds + dip * x + 8 * smooth_noise(rng, (height, width), 64) + margin
    return np.interp(time, np.arange(len(trace)), trace).astype(np.float32)


def salt_bodies(rng: np.random.Generator, height: int, width: int, count: int) -> np.ndarray:
    """(height, width) bool: domes and diapirs with irregular boundaries."""
    z, x = np.mgrid[0:height, 0:width].astype(np.float32)
    # Warp the coordinates so boundaries wander like real salt flanks.
    xw = x + 25 * smooth_noise(rng, (height, width), 48)
    zw = z + 15 * smooth_noise(rng, (height, width), 48)
    salt = np.zeros((height, width), dtype=bool)
    for _ in range(count):
        cx = rng.uniform(0.1, 0.9) * width
        cz = rng.uniform(0.15, 0.85) * height
        rx = rng.uniform(50, 180)
        rz = rng.uniform(40, 140)
        dz = (zw - cz) / rz
        if rng.random() < 0.6:
            # A diapir: the dome sits on a stem that rises from the bottom of the section.
            dz = np.minimum(dz, 0)
            rx = min(rx, 80)
        salt |= ((xw - cx) / rx) ** 2 + dz**2 < 1
    return salt


def section(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One seismic section: (height, width) float32 amplitude and bool salt mask."""
    amplitude = layered_reflectors(rng, height, width)
    salt = salt_bodies(rng, height, width, count=int(rng.integers(2, 5)))
    chaos = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 1.5)
    amplitude = np.where(salt, 0.25 * chaos / chaos.std(), amplitude)
    # Bright top reflector: the first few salt pixels below sediment, strongest at the top.
    above = np.zeros_like(salt)
    for depth, strength in ((1, 1.0), (2, 1.0), (3, 1.5)):
        above[depth:] = salt[:-depth]
        amplitude += strength * (salt & ~above)
    # A weaker, negative base reflector where salt sits on sediment.
    below = np.zeros_like(salt)
    below[:-1] = salt[1:]
    amplitude -= 1.2 * (salt & ~below)
    # Band-limited noise: smoother along the layers than across them, like migrated data.
    noise = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), sigmaX=2.0, sigmaY=0.8)
    # Weaker than the reflectors (std ~0.8), so salt stands out by its lack of layering.
    amplitude += 0.25 * rng.uniform(0.2, 1.0) * noise / noise.std()
    if rng.random() < 0.5:
        # No data above a sloping line in the upper-left corner (outside the survey).
        z, x = np.mgrid[0:height, 0:width]
        edge = rng.uniform(0.3, 0.6) * height * (1 - x / (rng.uniform(0.3, 0.6) * width))
        no_data = z < edge
        amplitude[no_data] = 0.0
        salt = salt & ~no_data  # nothing is labelled where nothing was recorded
    return amplitude, salt


def normalise_tile(tile: np.ndarray, constant_below: float = 1e-6) -> np.ndarray:
    """Min-max normalise to uint8 as each competition tile was; a constant tile (its values
    spanning less than `constant_below`) becomes black."""
    low, high = float(tile.min()), float(tile.max())
    if high - low < constant_below:
        return np.zeros(tile.shape, dtype=np.uint8)
    return np.round((tile - low) * (255.0 / (high - low))).astype(np.uint8)


def generate_tiles(seed: int, sections: int, section_cols: int, section_rows: int) -> list[Tile]:
    """Every tile of every section, in section order, with unique random hex ids."""
    rng = np.random.default_rng(seed)
    tiles: list[Tile] = []
    used: set[str] = set()
    for mosaic_id in range(sections):
        height, width = section_rows * TILE_SIZE, section_cols * TILE_SIZE
        amplitude, salt = section(rng, height, width)
        top_depth = int(rng.integers(0, 200))
        for y in range(section_rows):
            for x in range(section_cols):
                window = np.s_[y * TILE_SIZE : (y + 1) * TILE_SIZE, x * TILE_SIZE : (x + 1) * TILE_SIZE]
                mask = salt[window]
                if mask.all():
                    continue
                tile_id = _new_id(rng, used)
                depth = top_depth + y * TILE_SIZE + TILE_SIZE // 2
                tiles.append(Tile(tile_id, normalise_tile(amplitude[window]), mask.copy(), x, y, mosaic_id, depth))
    return tiles


def write_dataset(out: str | Path, tiles: list[Tile], seed: int, train_fraction: float, overwrite: bool = False) -> Path:
    """Shuffle `tiles` into train and test and write them in the competition layout at `out`."""
    if not 0 < train_fraction < 1:
        raise SaltError(f"train_fraction={train_fraction}: must be between 0 and 1")
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(tiles))
    n_train = max(1, round(train_fraction * len(tiles)))
    train = [tiles[i] for i in order[:n_train]]
    test = [tiles[i] for i in order[n_train:]]
    # atomic_directory removes the half-written temporary directory on any error; what is
    # left to do here is to turn the OSError (full disk, no permission) into one line.
    try:
        with atomic_directory(out, overwrite=overwrite) as root:
            for sub in ("train/images", "train/masks", "test/images"):
                (root / sub).mkdir(parents=True)
            # The published images hold three identical 8-bit channels; the masks are 16-bit.
            for split, split_tiles in (("train", train), ("test", test)):
                for tile in split_tiles:
                    write_png(root / split / "images" / f"{tile.id}.png", np.repeat(tile.image[..., None], 3, axis=2))
            for tile in train:
                write_png(root / "train" / "masks" / f"{tile.id}.png", tile.mask.astype(np.uint16) * 65535)
            _write_csv(root / "train.csv", ("id", "rle_mask"), ((t.id, rle.encode(t.mask)) for t in train))
            _write_csv(root / "sample_submission.csv", ("id", "rle_mask"), ((t.id, "1 1") for t in test))
            _write_csv(root / "depths.csv", ("id", "z"), ((t.id, t.depth) for t in tiles))
            _write_csv(root / "layout.csv", ("id", "x", "y", "mosaic_id"), ((t.id, t.x, t.y, t.mosaic_id) for t in tiles))
    except OSError as exc:
        problem = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc)).lower()
        raise SaltError(f"out {out}: {problem} while writing synthetic tiles") from None
    return Path(out)


def _new_id(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        tile_id = rng.bytes(5).hex()
        if tile_id not in used:
            used.add(tile_id)
            return tile_id


def _write_csv(path: Path, header: tuple[str, ...], rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
