"""Load a split of a competition-layout data directory into memory as compact arrays.

Layout (the competition's, also written by `salt.synthetic`)::

    train.csv              id,rle_mask      (labelled tiles; empty rle_mask = no salt)
    depths.csv             id,z             (every tile)
    train/images/<id>.png  8-bit, 1 or 3 identical channels
    train/masks/<id>.png   8- or 16-bit, 0 = sediment, anything else = salt
    test/images/<id>.png
    sample_submission.csv  id,rle_mask      (every test id once)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from salt import rle
from salt.data.tables import read_table
from salt.errors import DataError, RLEError
from salt.geometry import TILE_SIZE

Split = Literal["train", "test"]


@dataclass(frozen=True)
class TileSet:
    """The tiles of one split, in memory.

    ids:    (N,) str
    images: (N, 101, 101) uint8, grayscale
    depths: (N,) int32, depth of the tile (the competition's `z`)
    masks:  (N, 101, 101) bool, True = salt; None for unlabelled tiles
    """

    ids: np.ndarray
    images: np.ndarray
    depths: np.ndarray
    masks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def coverage(self) -> np.ndarray:
        """(N,) float32 fraction of each tile's pixels that are salt."""
        if self.masks is None:
            raise ValueError("unlabelled tiles have no coverage")
        return self.masks.mean(axis=(1, 2), dtype=np.float32)

    def subset(self, index: np.ndarray) -> TileSet:
        """The tiles at `index` (integer indices or a boolean selection)."""
        return TileSet(
            ids=self.ids[index],
            images=self.images[index],
            depths=self.depths[index],
            masks=None if self.masks is None else self.masks[index],
        )


def load_split(data_dir: str | os.PathLike, split: Split, *, threads: int = 8) -> TileSet:
    """Read every tile of `split` ("train" or "test") from a competition-layout directory.

    Train ids and their order come from `train.csv`; test ids from `sample_submission.csv`
    when present, else from the file names in `test/images`. Raises `DataError` naming the
    file or row for anything missing, malformed, or inconsistent.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data dir {root}: not found (set data.dir or SALT_DATA_DIR)")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    image_dir = _require_dir(root / split / "images")
    image_ids = {path.stem for path in image_dir.glob("*.png")}

    if split == "train":
        mask_dir = _require_dir(root / "train" / "masks")
        mask_ids = {path.stem for path in mask_dir.glob("*.png")}
        ids = _train_ids(root / "train.csv")
        listed = set(ids)
        for tile_id in sorted(image_ids - mask_ids):
            raise DataError(f"{image_dir / tile_id}.png: image without a mask in {mask_dir}")
        for tile_id in sorted(mask_ids - image_ids):
            raise DataError(f"{mask_dir / tile_id}.png: mask without an image in {image_dir}")
        for tile_id in sorted(image_ids - listed):
            raise DataError(f"{image_dir / tile_id}.png: tile has no row in {root / 'train.csv'}")
    else:
        sample = root / "sample_submission.csv"
        if sample.is_file():
            ids = [fields[0] for _, fields in read_table(sample, ("id", "rle_mask"))]
            for tile_id in sorted(image_ids - set(ids)):
                raise DataError(f"{image_dir / tile_id}.png: test tile missing from {sample}")
        else:
            ids = sorted(image_ids)
    for tile_id in ids:
        if tile_id not in image_ids:
            raise DataError(f"{image_dir / tile_id}.png: listed in the {split} table but the image is missing")
    if not ids:
        raise DataError(f"{image_dir}: no tiles")

    depths = _depths(root / "depths.csv", ids)
    with ThreadPoolExecutor(threads) as pool:
        images = np.stack(list(pool.map(_read_image, (image_dir / f"{i}.png" for i in ids))))
        masks = None
        if split == "train":
            masks = np.stack(list(pool.map(_read_mask, (mask_dir / f"{i}.png" for i in ids))))
    return TileSet(ids=np.array(ids), images=images, depths=depths, masks=masks)


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: directory not found")
    return path


def _train_ids(path: Path) -> list[str]:
    """Ids of train.csv in file order, after checking that every RLE is well formed."""
    ids = []
    for line, (tile_id, encoded) in read_table(path, ("id", "rle_mask")):
        try:
            rle.parse(encoded)
        except RLEError as exc:
            raise DataError(f"{path}, line {line} (id {tile_id}): malformed rle_mask: {exc}") from None
        ids.append(tile_id)
    return ids


def _depths(path: Path, ids: list[str]) -> np.ndarray:
    table = {}
    for line, (tile_id, z) in read_table(path, ("id", "z")):
        try:
            table[tile_id] = int(float(z))
        except ValueError:
            raise DataError(f"{path}, line {line}: depth {z!r} of id {tile_id} is not a number") from None
    missing = [tile_id for tile_id in ids if tile_id not in table]
    if missing:
        raise DataError(f"{path}: no depth for {len(missing)} tile(s), e.g. id {missing[0]}")
    return np.array([table[tile_id] for tile_id in ids], dtype=np.int32)


def _read_png(path: Path, flags: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    # imdecode on the bytes rather than imread: it reports a corrupt file as None instead
    # of printing warnings, and reads paths OpenCV cannot open on some platforms.
    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flags)
    if array is None:
        raise DataError(f"{path}: not a readable image (corrupt or not a PNG)")
    if array.shape[:2] != (TILE_SIZE, TILE_SIZE):
        h, w = array.shape[:2]
        raise DataError(f"{path}: image is {w}x{h} pixels, expected {TILE_SIZE}x{TILE_SIZE}")
    return array


def _read_image(path: Path) -> np.ndarray:
    """(101, 101) uint8; the published images hold 3 identical channels."""
    return _read_png(path, cv2.IMREAD_GRAYSCALE)


def _read_mask(path: Path) -> np.ndarray:
    """(101, 101) bool; masks are 8- or 16-bit (the published ones hold 0 and 65535)."""
    array = _read_png(path, cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        array = array[..., 0]
    return array > 0
