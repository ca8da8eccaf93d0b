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

from salt.folds.assign import mosaic_folds, random_folds
from salt.folds.table import (
    COLUMNS,
    FOLD_KINDS,
    FOLDS_FORMAT,
    FoldSettings,
    describe,
    fold_table,
    folds_for,
    make_folds,
    read_folds,
    write_folds,
)

__all__ = [
    "COLUMNS",
    "FOLDS_FORMAT",
    "FOLD_KINDS",
    "FoldSettings",
    "describe",
    "fold_table",
    "folds_for",
    "make_folds",
    "mosaic_folds",
    "random_folds",
    "read_folds",
    "write_folds",
]
