"""Mosaics of a competition-layout directory: the `id,x,y,mosaic_id` table, cached.

    table = mosaics_for(data_dir, cache_dir, AssemblySettings())

`assemble_dataset` reads every split the directory holds (train and test together: a
mosaic mixes both), assembles them and returns the table; `mosaics_for` is the same
through the cache under ``paths.cache_dir``, keyed by the data files' identity (names,
sizes, modification times) and the settings, so a second call costs a file listing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from salt.data.cache import ArrayCache, fingerprint_files
from salt.data.tables import read_table
from salt.data.tiles import load_split
from salt.errors import DataError
from salt.files import atomic_file
from salt.mosaic.assembly import Layout
from salt.mosaic.build import AssemblySettings, assemble_tiles

COLUMNS = ("id", "x", "y", "mosaic_id")
SPLITS = ("train", "test")
# Bump when the assembly's output changes meaning, so cached tables are rebuilt.
MOSAIC_FORMAT = 1


def mosaic_table(ids: np.ndarray, layout: Layout, min_size: int = 2) -> pd.DataFrame:
    """The tiles of mosaics with at least `min_size` tiles, as a DataFrame.

    Columns: id (str), x (column), y (row, growing downwards), mosaic_id (0 = largest,
    then by decreasing size). Rows are sorted by mosaic_id, y, x.
    """
    sizes = layout.sizes()
    keep = sizes >= min_size
    # Renumber the kept mosaics 0.. in the layout's order (decreasing size).
    kept_labels = np.unique(layout.mosaic[keep])
    renumber = np.full(layout.mosaic.max(initial=-1) + 1, -1, dtype=np.int64)
    renumber[kept_labels] = np.arange(len(kept_labels))
    table = pd.DataFrame(
        {
            "id": np.asarray(ids)[keep].astype(str),
            "x": layout.x[keep].astype(np.int64),
            "y": layout.y[keep].astype(np.int64),
            "mosaic_id": renumber[layout.mosaic[keep]],
        }
    )
    return table.sort_values(["mosaic_id", "y", "x"], kind="stable").reset_index(drop=True)


def assemble_dataset(
    data_dir: str | os.PathLike,
    settings: AssemblySettings = AssemblySettings(),
    *,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Read every split of `data_dir`, assemble all tiles together; return the table."""
    splits = _splits(data_dir)
    start = time.perf_counter()
    tiles = [load_split(data_dir, split) for split in splits]
    ids = np.concatenate([t.ids for t in tiles])
    images = np.concatenate([t.images for t in tiles])
    log(f"read {len(ids):,} tiles ({' + '.join(splits)}): {time.perf_counter() - start:.1f} s")
    assembly = assemble_tiles(images, settings)
    log("  ".join(f"{name}: {seconds:.1f} s" for name, seconds in assembly.timings.items()))
    table = mosaic_table(ids, assembly.layout)
    log(
        f"{len(table):,} tiles in {table.mosaic_id.nunique():,} mosaics of ≥ 2 tiles "
        f"(largest {int(table.mosaic_id.value_counts().max()) if len(table) else 0}); "
        f"{int((~assembly.usable).sum()):,} constant or near-constant tiles left out"
    )
    return table


def mosaics_for(
    data_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    settings: AssemblySettings = AssemblySettings(),
    *,
    verify: bool = True,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """`assemble_dataset`, from the cache when the data files and settings are unchanged."""
    data_dir = Path(data_dir)
    cache = ArrayCache(cache_dir, forbid_inside=[data_dir])
    params = {"kind": "mosaics", "format": MOSAIC_FORMAT, "data": data_fingerprint(data_dir), "assembly": settings.as_dict()}

    def build() -> dict[str, np.ndarray]:
        table = assemble_dataset(data_dir, settings, log=log)
        return {
            "ids": table.id.to_numpy().astype(str),
            "xy": table[["x", "y"]].to_numpy(np.int64),
            "mosaic_id": table.mosaic_id.to_numpy(np.int64),
        }

    arrays, hit = cache.get_or_build("mosaics", params, build, verify=verify)
    if hit:
        log(f"mosaics from cache {cache.entry_dir('mosaics', params)}")
    xy = np.asarray(arrays["xy"])
    return pd.DataFrame(
        {"id": np.asarray(arrays["ids"]).astype(str), "x": xy[:, 0], "y": xy[:, 1], "mosaic_id": np.asarray(arrays["mosaic_id"])}
    )


def table_from_config(cfg) -> pd.DataFrame:
    """The mosaic table for ``cfg.data.dir`` and ``cfg.assembly`` (a composed command config),
    cached under ``cfg.paths.cache_dir`` unless ``cfg.cache`` is false."""
    settings = AssemblySettings.from_config(cfg.assembly)
    if cfg.get("cache", True):
        return mosaics_for(cfg.data.dir, cfg.paths.cache_dir, settings, verify=bool(cfg.get("verify", True)))
    return assemble_dataset(cfg.data.dir, settings)


def data_fingerprint(data_dir: str | os.PathLike) -> str:
    """Identity of a data directory's splits and top-level tables (names, sizes, mtimes)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data dir {data_dir}: not found (set data.dir or SALT_DATA_DIR)")
    names = [path.name for path in data_dir.iterdir() if path.is_file()]
    return fingerprint_files(data_dir, [*names, *_splits(data_dir)])


def write_mosaics(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the table as CSV `id,x,y,mosaic_id`, atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        table.loc[:, list(COLUMNS)].to_csv(tmp, index=False)
    return path


def read_mosaics(path: str | os.PathLike) -> pd.DataFrame:
    """Read and check a mosaic CSV: header `id,x,y,mosaic_id`, integer cells, one tile per
    cell, each id once. Raises `DataError` naming the file and the problem."""
    rows = read_table(path, COLUMNS)  # checks the header and duplicate ids
    try:
        table = pd.DataFrame(
            {
                "id": [fields[0].strip() for _, fields in rows],
                "x": [int(fields[1]) for _, fields in rows],
                "y": [int(fields[2]) for _, fields in rows],
                "mosaic_id": [int(fields[3]) for _, fields in rows],
            }
        )
    except ValueError as exc:
        raise DataError(f"{path}: x, y and mosaic_id must be integers ({exc})") from None
    clash = table.duplicated(["mosaic_id", "x", "y"], keep=False)
    if clash.any():
        first = table[clash].iloc[0]
        raise DataError(f"{path}: two tiles in cell x={first.x}, y={first.y} of mosaic {first.mosaic_id}")
    return table


def _splits(data_dir: str | os.PathLike) -> list[str]:
    present = [split for split in SPLITS if (Path(data_dir) / split / "images").is_dir()]
    if not present:
        raise DataError(f"data dir {data_dir}: holds neither train/images nor test/images")
    return present
