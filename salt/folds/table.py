"""The fold table of a data directory: settings, making and caching it, reading and writing
it as CSV (see `salt.folds`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from salt.data.cache import ArrayCache
from salt.data.prepared import PaddingSettings  # noqa: F401  registers data/padding/schema, which the configs compose
from salt.data.tables import read_table
from salt.data.tiles import load_split
from salt.errors import DataError, SaltError
from salt.files import atomic_file
from salt.folds.assign import mosaic_folds, random_folds
from salt.mosaic.build import AssemblySettings  # also registers assembly/schema (folds=mosaic)
from salt.settings import settings_from_block

FOLD_KINDS = ("mosaic", "random")
COLUMNS = ("id", "fold", "coverage", "mosaic_id")
FOLDS_FORMAT = 1  # bump when fold assignment changes, so cached folds are rebuilt


@dataclass(frozen=True)
class FoldSettings:
    """The ``folds`` config block: kind ("mosaic" or "random"), number of folds k, seed,
    and for mosaic folds the assembly settings (a `salt.mosaic.AssemblySettings` mapping;
    empty: the assembly's defaults).

    The presets (6 mosaic folds whose assembly takes the lone links post-processing refuses,
    5 random folds) are written once, in conf/folds/*.yaml; `preset` reads them.
    """

    kind: str
    k: int
    seed: int
    assembly: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FOLD_KINDS:
            raise SaltError(f"folds.kind={self.kind!r}: must be one of {', '.join(FOLD_KINDS)}")
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 2:
            raise SaltError(f"folds.k={self.k!r}: must be an integer of at least 2")

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | DictConfig) -> FoldSettings:
        return settings_from_block(cls, block, "folds")

    @classmethod
    def preset(cls, kind: str, **changes: Any) -> FoldSettings:
        """conf/folds/<kind>.yaml as a training run composes it, with `changes` applied."""
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        from salt import CONF_DIR

        overrides = [f"folds={kind}"]
        if GlobalHydra.instance().is_initialized():  # inside a Hydra app: its config dir is this one
            block = compose("train", overrides=overrides).folds
        else:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                block = compose("train", overrides=overrides).folds
        return replace(cls.from_config(block), **changes)


# --- tables and files --------------------------------------------------------------------


def fold_table(ids: np.ndarray, coverage: np.ndarray, folds: np.ndarray, mosaic: np.ndarray | None = None) -> pd.DataFrame:
    """One row per train tile: id, fold, coverage, mosaic_id (-1 for none)."""
    return pd.DataFrame(
        {
            "id": np.asarray(ids).astype(str),
            "fold": np.asarray(folds, dtype=np.int64),
            "coverage": np.asarray(coverage, dtype=np.float64),
            "mosaic_id": np.full(len(ids), -1, dtype=np.int64) if mosaic is None else np.asarray(mosaic, dtype=np.int64),
        }
    )


def write_folds(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the fold table as CSV (id,fold,coverage,mosaic_id), atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        table.loc[:, list(COLUMNS)].to_csv(tmp, index=False, float_format="%.6f")
    return path


def read_folds(path: str | os.PathLike) -> pd.DataFrame:
    """Read a fold CSV written by `write_folds`; `DataError` names the file and problem."""
    rows = read_table(path, COLUMNS)
    try:
        table = pd.DataFrame(
            {
                "id": [fields[0].strip() for _, fields in rows],
                "fold": [int(fields[1]) for _, fields in rows],
                "coverage": [float(fields[2]) for _, fields in rows],
                "mosaic_id": [int(fields[3]) for _, fields in rows],
            }
        )
    except ValueError as exc:
        raise DataError(f"{path}: fold and mosaic_id must be integers, coverage a number ({exc})") from None
    if len(table) and table.fold.min() < 0:
        raise DataError(f"{path}: negative fold {table.fold.min()}")
    return table


# --- from a data directory ----------------------------------------------------------------


def make_folds(
    data_dir: str | os.PathLike,
    settings: FoldSettings,
    *,
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """The fold table of a data dir's train tiles (mosaics from `cache_dir` when given)."""
    from salt.mosaic import assemble_dataset, mosaics_for

    start = time.perf_counter()
    train = load_split(data_dir, "train")
    coverage = train.coverage.astype(np.float64)
    log(f"read {len(train):,} train tiles: {time.perf_counter() - start:.1f} s")
    if settings.kind == "random":
        return fold_table(train.ids, coverage, random_folds(coverage, settings.k, settings.seed))
    assembly = AssemblySettings.from_config(settings.assembly)
    if cache_dir is None:
        mosaics = assemble_dataset(data_dir, assembly, log=log)
    else:
        mosaics = mosaics_for(data_dir, cache_dir, assembly, log=log)
    mosaic_of = dict(zip(mosaics.id, mosaics.mosaic_id))
    mosaic = np.array([mosaic_of.get(tile_id, -1) for tile_id in train.ids.tolist()], dtype=np.int64)
    folds = mosaic_folds(coverage, mosaic, settings.k, settings.seed)
    return fold_table(train.ids, coverage, folds, mosaic)


def folds_for(
    data_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    settings: FoldSettings,
    *,
    verify: bool = True,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """`make_folds`, cached under `cache_dir` by the data files' identity and the settings."""
    from salt.mosaic.dataset import data_fingerprint

    cache = ArrayCache(cache_dir, forbid_inside=[data_dir])
    params = {
        "kind": "folds",
        "format": FOLDS_FORMAT,
        "data": data_fingerprint(data_dir),
        "folds": {"kind": settings.kind, "k": settings.k, "seed": settings.seed},
        # Random folds do not depend on the assembly; keep them out of the key.
        "assembly": AssemblySettings.from_config(settings.assembly).as_dict() if settings.kind == "mosaic" else None,
    }

    def build() -> dict[str, np.ndarray]:
        table = make_folds(data_dir, settings, cache_dir=cache_dir, log=log)
        return {
            "ids": table.id.to_numpy().astype(str),
            "fold": table.fold.to_numpy(np.int64),
            "coverage": table.coverage.to_numpy(np.float64),
            "mosaic_id": table.mosaic_id.to_numpy(np.int64),
        }

    arrays, _ = cache.get_or_build("folds", params, build, verify=verify)
    return fold_table(np.asarray(arrays["ids"]), arrays["coverage"], arrays["fold"], arrays["mosaic_id"])


def describe(table: pd.DataFrame) -> pd.DataFrame:
    """Per fold: tiles, mean coverage, share of empty tiles, mosaics."""
    grouped = table.groupby("fold")
    return pd.DataFrame(
        {
            "tiles": grouped.size(),
            "mean_coverage": grouped.coverage.mean(),
            "empty_share": grouped.coverage.apply(lambda c: float((c == 0).mean())),
            "mosaics": grouped.mosaic_id.apply(lambda m: int(m[m >= 0].nunique())),
        }
    )
