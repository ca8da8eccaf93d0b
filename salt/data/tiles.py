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

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from salt import rle
from salt.data.tables import describe_os_error, read_table
from salt.errors import DataError, RLEError
from salt.geometry import TILE_SIZE

Split = Literal["train", "test"]

# How many ids a message lists when many tiles share a problem.
FEW = 5


class MaskMismatchWarning(UserWarning):
    """train.csv's rle_mask and the mask PNG of the same tile describe different masks."""


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
    file or row for anything missing, malformed, or inconsistent. Train masks are read from
    the mask PNGs; a `MaskMismatchWarning` says so when train.csv's RLEs disagree with them.
    """
    root = Path(data_dir)
    # os.path rather than Path.is_dir: pathlib (Python < 3.12) raises PermissionError for a
    # path under a directory it cannot search, instead of answering.
    if os.path.isfile(root):
        raise DataError(f"data dir {root}: is a file, not a directory")
    if not os.path.isdir(root):
        raise DataError(f"data dir {root}: not found (set data.dir or SALT_DATA_DIR)")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    image_dir = root / split / "images"
    image_ids = _png_ids(image_dir)

    if split == "train":
        mask_dir = root / "train" / "masks"
        mask_ids = _png_ids(mask_dir)
        table = root / "train.csv"
        rles = _train_rles(table)
        ids = list(rles)
        listed = set(ids)
        for tile_id in sorted(image_ids - mask_ids):
            raise DataError(f"{image_dir / tile_id}.png: image without a mask in {mask_dir}")
        for tile_id in sorted(mask_ids - image_ids):
            raise DataError(f"{mask_dir / tile_id}.png: mask without an image in {image_dir}")
        for tile_id in sorted(image_ids - listed):
            raise DataError(f"{image_dir / tile_id}.png: tile has no row in {root / 'train.csv'}")
    else:
        table = root / "sample_submission.csv"
        # lexists, not is_file: a dangling link or an unreadable sample_submission.csv is
        # reported by read_table rather than silently replaced by the directory listing.
        if os.path.lexists(table):
            ids = [fields[0] for _, fields in read_table(table, ("id", "rle_mask"))]
            for tile_id in sorted(image_ids - set(ids)):
                raise DataError(f"{image_dir / tile_id}.png: test tile missing from {table}")
        else:
            ids = sorted(image_ids)
    # All of them at once: a partial copy usually lacks many images, not one.
    missing = [tile_id for tile_id in ids if tile_id not in image_ids]
    if missing:
        raise DataError(
            f"{image_dir}: {len(missing)} of {len(ids)} tiles listed in {table.name} have no image: {_first_few(missing)}"
        )
    if not ids:
        raise DataError(f"{image_dir}: no tiles")

    depths = _depths(root / "depths.csv", ids)
    with ThreadPoolExecutor(threads) as pool:
        images = np.stack(list(pool.map(_read_image, (image_dir / f"{i}.png" for i in ids))))
        masks = None
        if split == "train":
            masks = np.stack(list(pool.map(_read_mask, (mask_dir / f"{i}.png" for i in ids))))
    if masks is not None:
        _warn_if_rles_disagree(table, mask_dir, ids, rles, masks)
    return TileSet(ids=np.array(ids), images=images, depths=depths, masks=masks)


def _first_few(ids: list[str]) -> str:
    return ", ".join(ids[:FEW]) + (", ..." if len(ids) > FEW else "")


def _png_ids(directory: Path) -> set[str]:
    """Ids (names without .png) of the PNG files in `directory`."""
    # os.listdir rather than Path.glob: glob yields nothing for a directory it cannot read,
    # which would surface later as "every image is missing" instead of the real cause.
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise DataError(describe_os_error(directory, exc, kind="directory")) from None
    return {name[: -len(".png")] for name in names if name.endswith(".png")}


def _train_rles(path: Path) -> dict[str, str]:
    """{id: rle_mask} of train.csv in file order, after checking that every RLE is well formed."""
    rles = {}
    for line, (tile_id, encoded) in read_table(path, ("id", "rle_mask")):
        try:
            rle.parse(encoded)
        except RLEError as exc:
            raise DataError(f"{path}, line {line} (id {tile_id}): malformed rle_mask: {exc}") from None
        rles[tile_id] = encoded
    return rles


def _warn_if_rles_disagree(table: Path, mask_dir: Path, ids: list[str], rles: dict[str, str], masks: np.ndarray) -> None:
    """One warning if train.csv and the mask PNGs disagree; the PNGs are what gets used.

    The loader (and so training) reads the PNGs while scoring against train.csv reads the
    RLEs, so a disagreement would make validation scores quietly differ from the truth.
    """
    disagree = [tile_id for tile_id, mask in zip(ids, masks) if not np.array_equal(rle.decode(rles[tile_id]), mask)]
    if disagree:
        warnings.warn(
            f"{table}: rle_mask of {len(disagree)} of {len(ids)} tiles disagrees with its mask PNG in "
            f"{mask_dir}: {_first_few(disagree)}; using the PNG masks",
            MaskMismatchWarning,
            stacklevel=3,  # the caller of load_split
        )


def _depths(path: Path, ids: list[str]) -> np.ndarray:
    table = {}
    for line, (tile_id, z) in read_table(path, ("id", "z")):
        try:
            depth = float(z)
        except ValueError:
            raise DataError(f"{path}, line {line}: depth {z!r} of id {tile_id} is not a number") from None
        # float() accepts 'inf' and 'nan', and the depths are stored as int32.
        if not math.isfinite(depth):
            raise DataError(f"{path}, line {line}: depth {z!r} of id {tile_id} is not a finite number")
        if abs(depth) >= 2**31:
            raise DataError(f"{path}, line {line}: depth {z!r} of id {tile_id} is out of range")
        table[tile_id] = int(depth)
    missing = [tile_id for tile_id in ids if tile_id not in table]
    if missing:
        raise DataError(f"{path}: no depth for {len(missing)} tile(s), e.g. id {missing[0]}")
    return np.array([table[tile_id] for tile_id in ids], dtype=np.int32)


def _read_png(path: Path, flags: int) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:  # missing, dangling link, permission denied, a directory
        raise DataError(describe_os_error(path, exc)) from None
    if not data:
        # imdecode asserts on an empty buffer (a cv2.error that names no file).
        raise DataError(f"{path}: empty file (0 bytes)")
    # imdecode on the bytes rather than imread: it reports a corrupt file as None instead
    # of printing warnings, and reads paths OpenCV cannot open on some platforms.
    try:
        array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        array = None
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
