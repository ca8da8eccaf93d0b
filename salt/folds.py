"""Cross-validation folds of the train tiles, as data: a CSV with a `fold` column.

    python -m salt.folds folds=mosaic out=folds.csv      # or folds=random, folds.k=10

Two kinds, each a deterministic function of the data and a seed:

- ``mosaic`` (default k = 6): all train tiles of one mosaic fall in one fold, so no tile
  is validated next to its own neighbours from the training folds (the seams leak the
  answer). Mosaics go first, largest first, each to the fold where it leaves sizes, salt
  and empty tiles most even; the train tiles outside mosaics fill the folds to equal
  sizes, stratified by coverage, and a few swaps of them even out salt and empty tiles
  (see `mosaic_folds`).
- ``random`` (default k = 5), stratified by coverage: tiles sorted by coverage (ties in a
  seeded random order) are dealt k at a time, each block to a seeded permutation of the
  folds, so every fold gets a tile from every stretch of the coverage distribution.

The table has one row per train tile: id, fold, coverage (salt share of the tile) and
mosaic_id (-1 outside mosaics, and for random folds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from salt.data.cache import ArrayCache
from salt.data.tables import read_table
from salt.data.tiles import load_split
from salt.errors import DataError, SaltError, exit_on_error
from salt.files import atomic_file
from salt.settings import config_block

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
        block = config_block(block, "folds", allowed=("kind", "k", "seed", "assembly"), required=("kind", "k", "seed"))
        return cls(kind=str(block["kind"]), k=int(block["k"]), seed=int(block["seed"]), assembly=dict(block.get("assembly") or {}))

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


# --- fold assignment (pure functions of arrays) -----------------------------------------


def random_folds(coverage: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """(N,) coverage in [0, 1] → (N,) int64 fold in 0..k-1, stratified by coverage.

    Fold sizes differ by at most one; so does each fold's count within any run of tiles
    that are consecutive in coverage order.
    """
    coverage = np.asarray(coverage, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # Random order first, then a stable sort: equal coverages (all the empty tiles) end
    # up in a seeded random order.
    shuffled = rng.permutation(len(coverage))
    order = shuffled[np.argsort(coverage[shuffled], kind="stable")]
    folds = np.empty(len(coverage), dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    for start in range(0, len(order), k):
        block = order[start : start + k]
        # A full block takes every fold once; the last, partial block goes to the
        # smallest folds (all equal here), in a seeded order.
        chosen = rng.permutation(k)[: len(block)]
        folds[block] = chosen
        sizes[chosen] += 1
    return folds


def mosaic_folds(coverage: np.ndarray, mosaic: np.ndarray, k: int = 6, seed: int = 0) -> np.ndarray:
    """Folds that keep mosaics whole and are balanced in size, salt and empty tiles.

    1. Mosaics, largest first, each go to the fold where the sum over folds of squared
       excess over 1/k of the tiles, of the salt and of the empty tiles is least.
    2. The other tiles fill the folds to equal sizes (each fold's quota is what brings it
       to the common level), dealt in order of coverage to the fold furthest behind on
       its quota: each fold gets its share of every stretch of the coverage distribution.
    3. Swaps of two such tiles between folds, best first, even out salt and empty tiles
       while sizes stay as they are, until no swap helps.

    Args:
        coverage: (N,) salt share of each train tile, in [0, 1].
        mosaic: (N,) mosaic id of each train tile, -1 for tiles in no mosaic.
        k: number of folds.
        seed: order of equal-sized mosaics and of equal coverages; ties between folds.

    Returns:
        (N,) int64 fold in 0..k-1.
    """
    coverage = np.asarray(coverage, dtype=np.float64)
    mosaic = np.asarray(mosaic)
    rng = np.random.default_rng(seed)
    balance = _Balance(coverage, k)
    folds = np.full(len(coverage), -1, dtype=np.int64)
    tie_break = rng.permutation(k)
    groups, singles = _units(coverage, mosaic, rng)
    for members in groups:
        cost = balance.cost_of_adding(members)
        best = tie_break[np.argmin(cost[tie_break])]
        balance.add(best, members)
        folds[members] = best
    quota = _water_fill(balance.sizes, len(singles))
    dealt = np.zeros(k, dtype=np.int64)
    for tile in singles:
        progress = np.where(dealt < quota, dealt / np.maximum(quota, 1), np.inf)
        best = tie_break[np.argmin(progress[tie_break])]
        dealt[best] += 1
        balance.add(best, np.array([tile]))
        folds[tile] = best
    _swap_to_balance(folds, coverage, np.isin(np.arange(len(coverage)), singles), balance)
    return folds


class _Balance:
    """Each fold's share of the tiles, the salt and the empty tiles; balanced = 1/k each."""

    def __init__(self, coverage: np.ndarray, k: int) -> None:
        self.coverage, self.k = coverage, k
        self.totals = np.array(
            [max(len(coverage), 1), max(coverage.sum(), 1e-9), max(float((coverage == 0).sum()), 1.0)]
        )
        self.shares = np.zeros((k, 3))

    @property
    def sizes(self) -> np.ndarray:
        return np.round(self.shares[:, 0] * self.totals[0]).astype(np.int64)

    def measures(self, members: np.ndarray) -> np.ndarray:
        cov = self.coverage[members]
        return np.array([len(members), cov.sum(), (cov == 0).sum()]) / self.totals

    def cost_of_adding(self, members: np.ndarray) -> np.ndarray:
        """(k,) increase of the squared excess over 1/k if `members` went to each fold."""
        after = self.shares + self.measures(members)
        target = 1.0 / self.k
        return ((after - target) ** 2).sum(axis=1) - ((self.shares - target) ** 2).sum(axis=1)

    def add(self, fold: int, members: np.ndarray) -> None:
        self.shares[fold] += self.measures(members)


def _water_fill(sizes: np.ndarray, count: int) -> np.ndarray:
    """How many of `count` new tiles each fold takes to make sizes as equal as possible."""
    sizes = sizes.astype(np.int64).copy()
    quota = np.zeros_like(sizes)
    for _ in range(count):
        smallest = int(np.argmin(sizes))
        sizes[smallest] += 1
        quota[smallest] += 1
    return quota


def _swap_to_balance(
    folds: np.ndarray, coverage: np.ndarray, movable: np.ndarray, balance: _Balance, max_swaps: int = 1000
) -> None:
    """Swap movable tiles between folds, best swap first, while it evens out salt and empty
    tiles (sizes do not change). Modifies `folds` in place."""
    k, target = balance.k, 1.0 / balance.k
    salt = balance.shares[:, 1].copy()
    empty = balance.shares[:, 2].copy()
    norm_salt = coverage / balance.totals[1]
    norm_empty = (coverage == 0) / balance.totals[2]
    for _ in range(max_swaps):
        best_gain, best = 1e-15, None
        for i in range(k):
            a = np.flatnonzero((folds == i) & movable)
            for j in range(i + 1, k):
                b = np.flatnonzero((folds == j) & movable)
                if not len(a) or not len(b):
                    continue
                # Moving tile a from i to j and tile b from j to i shifts these amounts.
                d_salt = norm_salt[a][:, None] - norm_salt[b][None, :]
                d_empty = norm_empty[a][:, None] - norm_empty[b][None, :]
                before = (salt[i] - target) ** 2 + (salt[j] - target) ** 2 + (empty[i] - target) ** 2 + (empty[j] - target) ** 2
                after = (
                    (salt[i] - d_salt - target) ** 2
                    + (salt[j] + d_salt - target) ** 2
                    + (empty[i] - d_empty - target) ** 2
                    + (empty[j] + d_empty - target) ** 2
                )
                p, q = np.unravel_index(np.argmax(before - after), after.shape)
                if before - after[p, q] > best_gain:
                    best_gain, best = before - after[p, q], (i, j, a[p], b[q], d_salt[p, q], d_empty[p, q])
        if best is None:
            return
        i, j, tile_a, tile_b, d_salt, d_empty = best
        folds[tile_a], folds[tile_b] = j, i
        salt[i] -= d_salt
        salt[j] += d_salt
        empty[i] -= d_empty
        empty[j] += d_empty


def _units(coverage: np.ndarray, mosaic: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Mosaics as index arrays (largest first, equal sizes in a seeded order), and the
    tiles in no mosaic in order of coverage (equal coverages in a seeded order)."""
    grouped = mosaic >= 0
    labels = np.unique(mosaic[grouped])
    groups = [np.flatnonzero(mosaic == label) for label in rng.permutation(labels)]
    groups.sort(key=len, reverse=True)  # stable: equal sizes keep the seeded order
    singles = rng.permutation(np.flatnonzero(~grouped))
    return groups, singles[np.argsort(coverage[singles], kind="stable")]


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
    from salt.mosaic import AssemblySettings, assemble_dataset, mosaics_for

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
    from salt.mosaic import AssemblySettings
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


@hydra.main(version_base="1.3", config_path="conf", config_name="make_folds")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        settings = FoldSettings.from_config(cfg.folds)
        if cfg.get("cache", True):
            table = folds_for(cfg.data.dir, cfg.paths.cache_dir, settings, verify=bool(cfg.get("verify", True)))
        else:
            table = make_folds(cfg.data.dir, settings)
        out = write_folds(table, cfg.out)
        print(describe(table).to_string(float_format=lambda v: f"{v:.3f}"))
        print(f"wrote {settings.kind} folds (k={settings.k}, seed={settings.seed}) of {len(table):,} train tiles to {out}")


if __name__ == "__main__":
    main()
