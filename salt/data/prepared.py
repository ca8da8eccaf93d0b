"""Padded tiles of each split, built once and cached: the arrays training and prediction read.

For each split of the data directory: read the tiles, optionally match every tile's
histogram to the dataset's mean histogram, pad images and masks to the configured size,
and store the result under the cache directory, keyed by the data files' identity and the
parameters. A second call finds the entries and only checks them. `python -m salt.prepare`
builds them (and the folds) ahead of training; the data module calls `prepare_tiles` itself.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from salt.data.cache import ArrayCache, fingerprint_files
from salt.data.histogram import match_histograms, mean_histogram
from salt.data.padding import PADDING_MODES, pad_masks, pad_tiles
from salt.data.tiles import TileSet, load_split
from salt.errors import DataError, GeometryError
from salt.geometry import TileGeometry
from salt.settings import defaults_block, settings_from_block, store_schema

SPLITS = ("train", "test")


@dataclass(frozen=True)
class PaddingSettings:
    """How tiles become network inputs: the ``data.padding`` config block.

    mode: one of `salt.data.padding.PADDING_MODES`.
    size: padded side S, pixels (≥ 101); crop_size: the network's input side C (101 ≤ C ≤ S).
    mask_threshold: a biharmonically padded mask is salt where it exceeds this.
    """

    mode: str = "biharmonic"
    size: int = 148
    crop_size: int = 128
    mask_threshold: float = 0.7

    def __post_init__(self) -> None:
        if self.mode not in PADDING_MODES:
            raise GeometryError(f"data.padding.mode={self.mode!r}: must be one of {', '.join(PADDING_MODES)}")
        if not 0.0 <= self.mask_threshold < 1.0:
            raise GeometryError(f"data.padding.mask_threshold={self.mask_threshold}: must lie in [0, 1)")
        TileGeometry(padded_size=self.size, crop_size=self.crop_size)  # GeometryError on bad sizes, now

    @property
    def geometry(self) -> TileGeometry:
        return TileGeometry(padded_size=self.size, crop_size=self.crop_size)

    @classmethod
    def from_config(cls, padding: DictConfig | dict) -> PaddingSettings:
        # Every key required: a run's config.yaml must say how its tiles were padded.
        return settings_from_block(cls, padding, "data.padding", required=("mode", "size", "crop_size", "mask_threshold"))


store_schema("data/padding", defaults_block(PaddingSettings))  # the `padding` block of conf/data/*.yaml


@dataclass(frozen=True)
class PreparedTiles:
    """One split, padded; arrays are read-only memory maps of the cache.

    ids:    (N,) str
    depths: (N,) int32
    images: (N, S, S) float32 in [0, 1] (histogram-matched first when asked)
    masks:  (N, S, S) bool, True = salt; None for unlabelled tiles
    """

    ids: np.ndarray
    depths: np.ndarray
    images: np.ndarray
    masks: np.ndarray | None
    geometry: TileGeometry

    def __len__(self) -> int:
        return len(self.ids)


def prepare_tiles(
    data_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    splits: Iterable[str] | None = None,
    padding: PaddingSettings = PaddingSettings(),
    histogram_match: bool = False,
    verify: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, PreparedTiles]:
    """Padded tiles of each split, from the cache or built into it.

    Args:
        data_dir: a competition-layout directory (see `salt.data.tiles`).
        cache_dir: where entries live; must not be inside ``data_dir``.
        splits: names among ("train", "test"); None means every one the directory holds.
        padding: mode, sizes and mask threshold.
        histogram_match: map tiles onto the mean histogram of all the directory's tiles.
        verify: checksum cached arrays when loading them.
        log: receives one line per step, with its time.
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"data dir {data_dir}: is a file, not a directory")
    if not data_dir.is_dir():
        raise DataError(f"data dir {data_dir}: not found (set data.dir or SALT_DATA_DIR)")
    present = [split for split in SPLITS if (data_dir / split).is_dir()]
    splits = present if splits is None else list(splits)
    for split in splits:
        if split not in SPLITS:
            raise DataError(f"split {split!r}: must be one of {', '.join(SPLITS)}")
    if not splits:
        raise DataError(f"data dir {data_dir}: holds neither train/ nor test/")
    for split in splits:
        if split not in present:
            raise DataError(f"{data_dir / split}: directory not found")
    cache = ArrayCache(cache_dir, forbid_inside=[data_dir])
    loaded: dict[str, TileSet] = {}

    def tiles(split: str) -> TileSet:
        if split not in loaded:
            with log_step(log, f"  {split}: read tiles from {data_dir}"):
                loaded[split] = load_split(data_dir, split)
        return loaded[split]

    with log_step(log, "fingerprint data files"):
        fingerprints = {split: _fingerprint(data_dir, split) for split in sorted(set(present) | set(splits))}

    reference = None
    if histogram_match:
        # "The data in hand": every split the directory holds, whichever are prepared.
        params = {"kind": "mean-histogram", "data": {split: fingerprints[split] for split in present}}
        with log_step(log, "mean histogram") as note:
            arrays, hit = cache.get_or_build(
                "mean-histogram",
                params,
                lambda: {"histogram": mean_histogram(np.concatenate([tiles(split).images for split in present]))},
                verify=verify,
            )
            note("from cache" if hit else "built")
        reference = np.array(arrays["histogram"])

    prepared = {}
    for split in splits:
        params = {
            "kind": "padded-tiles",
            "split": split,
            "data": fingerprints[split],
            "padding": {"mode": padding.mode, "size": padding.size, "mask_threshold": padding.mask_threshold},
            "histogram": None if reference is None else hashlib.sha256(reference.tobytes()).hexdigest(),
        }
        name = f"tiles-{split}"
        with log_step(log, f"{split}: padded tiles ({padding.mode}, {padding.size}×{padding.size})") as note:
            arrays, hit = cache.get_or_build(
                name,
                params,
                lambda split=split: _pad_split(tiles(split), padding, reference, log),
                verify=verify,
            )
            note(f"{'from cache' if hit else 'stored in'} {cache.entry_dir(name, params)}")
        prepared[split] = PreparedTiles(
            ids=arrays["ids"],
            depths=arrays["depths"],
            images=arrays["images"],
            masks=arrays.get("masks"),
            geometry=padding.geometry,
        )
    return prepared


def _pad_split(
    tiles: TileSet, padding: PaddingSettings, reference: np.ndarray | None, log: Callable[[str], None]
) -> dict[str, np.ndarray]:
    images = tiles.images
    if reference is not None:
        with log_step(log, f"  match {len(tiles):,} histograms"):
            images = match_histograms(images, reference)
    with log_step(log, f"  pad {len(tiles):,} images"):
        arrays = {"ids": tiles.ids, "depths": tiles.depths, "images": pad_tiles(images, padding.size, padding.mode)}
    if tiles.masks is not None:
        with log_step(log, f"  pad {len(tiles):,} masks"):
            arrays["masks"] = pad_masks(tiles.masks, padding.size, padding.mode, threshold=padding.mask_threshold)
    return arrays


def _fingerprint(data_dir: Path, split: str) -> str:
    # The split's files plus the top-level tables (ids, depths, RLE masks) it is read with.
    tables = [path.name for path in data_dir.iterdir() if path.is_file()]
    return fingerprint_files(data_dir, [split, *tables])


class log_step:
    """Context manager logging ``what ... <seconds> s [note]`` when the step ends."""

    def __init__(self, log: Callable[[str], None], what: str) -> None:
        self.log, self.what, self.notes = log, what, []

    def __enter__(self) -> Callable[[str], None]:
        self.start = time.perf_counter()
        return self.notes.append

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            extra = f" ({'; '.join(self.notes)})" if self.notes else ""
            self.log(f"{self.what}: {time.perf_counter() - self.start:.2f} s{extra}")
