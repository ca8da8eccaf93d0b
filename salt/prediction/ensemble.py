"""Means over models, accumulated batch by batch, and the loop that feeds them.

Memory is one float32 101×101 sum per tile plus two counters, whatever the number of
models: 18,500 test tiles take 755 MB, however many checkpoints are averaged. No model's
output for the whole split is ever held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from salt import rundir
from salt.data.prepared import PaddingSettings, PreparedTiles, prepare_tiles
from salt.errors import SaltError
from salt.folds import folds_for
from salt.geometry import TILE_SIZE
from salt.prediction.inference import InferenceSettings, TileBatch, input_padding, predict_tiles
from salt.prediction.runs import Run, load_network
from salt.submission import read_rles

PROGRESS_EVERY = 60.0  # seconds between progress lines while a run predicts


class EnsembleMean:
    """Running sums of per-pixel P(salt) and per-tile P(tile holds salt) for N tiles.

    Each tile has its own count: out-of-fold means average only the models that
    predicted the tile. Networks without an empty-tile head add to the mask mean only.
    """

    def __init__(self, count: int) -> None:
        self.mask_sum = np.zeros((count, TILE_SIZE, TILE_SIZE), dtype=np.float32)
        self.mask_count = np.zeros(count, dtype=np.int64)
        self.salt_sum = np.zeros(count, dtype=np.float64)
        self.salt_count = np.zeros(count, dtype=np.int64)
        self._finished = False

    def __len__(self) -> int:
        return len(self.mask_count)

    def add(self, batch: TileBatch) -> None:
        """Add one model's predictions for `batch.indices` (each index once per batch)."""
        if self._finished:
            raise RuntimeError("EnsembleMean.add after means(): the sums were turned into means in place")
        self.mask_sum[batch.indices] += batch.mask_probability
        self.mask_count[batch.indices] += 1
        if batch.salt_probability is not None:
            self.salt_sum[batch.indices] += batch.salt_probability
            self.salt_count[batch.indices] += 1

    @property
    def covered(self) -> np.ndarray:
        """(N,) bool: tiles that at least one model predicted."""
        return self.mask_count > 0

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """(mask_probability (N, 101, 101) float32, salt_probability (N,) float32).

        The mask sums are divided in place (no second N×101×101 array), so `add` is
        refused afterwards. Tiles no model predicted have probability 0; tiles no
        empty-tile head saw have salt_probability NaN.
        """
        if not self._finished:
            covered = self.covered
            self.mask_sum[covered] /= self.mask_count[covered, None, None].astype(np.float32)
            self._finished = True
        with np.errstate(invalid="ignore", divide="ignore"):
            salt = np.where(self.salt_count > 0, self.salt_sum / np.maximum(self.salt_count, 1), np.nan)
        return self.mask_sum, salt.astype(np.float32)


# --- every run over the tiles ------------------------------------------------------------


class PreparedSplits:
    """Padded tiles per (split, padding, histogram matching), built or read once: runs that
    share input settings share the arrays (read-only memory maps of the cache)."""

    def __init__(self, data_dir: Path, cache_dir: Path) -> None:
        self.data_dir, self.cache_dir = Path(data_dir), Path(cache_dir)
        self._tiles: dict[tuple, PreparedTiles] = {}

    def get(self, split: str, padding: PaddingSettings, histogram_match: bool, ids: np.ndarray) -> PreparedTiles:
        """The split padded as asked; `ids` is the order the caller indexes by."""
        key = (split, padding, histogram_match)
        if key not in self._tiles:
            self._tiles[key] = prepare_tiles(
                self.data_dir, self.cache_dir, splits=[split], padding=padding, histogram_match=histogram_match, log=lambda line: None
            )[split]
        tiles = self._tiles[key]
        if not np.array_equal(tiles.ids, ids):
            raise SaltError(f"{self.data_dir}/{split}: cached tiles are not in the data dir's order; clear the cache at {self.cache_dir}")
        return tiles


def split_ids(data_dir: Path, split: str) -> np.ndarray:
    """Tile ids of a split in the loader's order (`salt.data.tiles.load_split`): train.csv
    for train; sample_submission.csv, else the sorted image names, for test."""
    if split == "train":
        return np.array(list(read_rles(data_dir / "train.csv")))
    sample = data_dir / "sample_submission.csv"
    if sample.is_file():
        return np.array(list(read_rles(sample)))
    return np.array(sorted(path.stem for path in (data_dir / "test" / "images").glob("*.png")))


def validation_tiles(run: Run, train_ids: np.ndarray, fold_table: Callable[[], pd.DataFrame], log: Callable[[str], None] = print) -> np.ndarray:
    """(M,) positions in `train_ids` of the tiles the run was validated on.

    The ids the run recorded (`salt.rundir`) when it has them; otherwise its fold
    recomputed from `fold_table()`, with a warning: fold code changed since the run was
    trained would hand it tiles it trained on.
    """
    recorded = rundir.read_validation_ids(run.dir)
    if recorded is not None:
        return rundir.validation_positions(run.dir, recorded, train_ids)
    log(
        f"warning: run {run.name} records no validation ids ({rundir.VALIDATION_IDS}); its out-of-fold tiles are "
        f"fold {run.fold} as today's fold code makes it, which may hold training tiles if that code changed since"
    )
    table = fold_table()
    fold_of = dict(zip(table.id, table.fold))
    return np.flatnonzero([fold_of.get(tile_id, -1) == run.fold for tile_id in train_ids.tolist()])


def ensemble_means(
    runs: Sequence[Run],
    settings: InferenceSettings,
    splits: PreparedSplits,
    *,
    test_ids: np.ndarray | None,
    train_ids: np.ndarray | None,
    log: Callable[[str], None] = print,
) -> tuple[EnsembleMean | None, EnsembleMean | None]:
    """Stream every run over the test tiles (when `test_ids` is given) and over the train
    tiles of its validation fold (out-of-fold, when `train_ids` is given).

    One network is in memory at a time; its batches go straight into the running means.
    Returns (test means, out-of-fold means), None for what was not asked.
    """
    test = None if test_ids is None else EnsembleMean(len(test_ids))
    oof = None if train_ids is None else EnsembleMean(len(train_ids))
    fold_tables: dict[str, pd.DataFrame] = {}  # keyed by repr: FoldSettings holds a dict
    for number, run in enumerate(runs, 1):
        start = time.perf_counter()
        net = load_network(run)
        padding = input_padding(run.padding, settings.crop, net.size_multiple)
        work = []  # (split, tiles, indices, accumulator)
        if test is not None:
            tiles = splits.get("test", padding, run.histogram_match, test_ids)
            work.append(("test", tiles, np.arange(len(tiles)), test))
        if oof is not None:
            def fold_table(run: Run = run) -> pd.DataFrame:
                key = repr(run.folds)
                if key not in fold_tables:
                    fold_tables[key] = folds_for(splits.data_dir, splits.cache_dir, run.folds, log=lambda line: None)
                return fold_tables[key]

            held = validation_tiles(run, train_ids, fold_table, log)
            work.append(("out-of-fold", splits.get("train", padding, run.histogram_match, train_ids), held, oof))
        total = sum(len(indices) for _, _, indices, _ in work)
        predicted, last_report = 0, time.perf_counter()
        for split, tiles, indices, accumulator in work:
            for batch in predict_tiles(net, tiles, indices, run.channels, settings):
                accumulator.add(batch)
                predicted += len(batch.indices)
                if time.perf_counter() - last_report > PROGRESS_EVERY:
                    # A CPU needs hours for the test set: say how far it is.
                    seconds = time.perf_counter() - start
                    log(f"  run {number}/{len(runs)}: {predicted:,}/{total:,} tiles ({split}), {predicted / seconds:.2f} tiles/s")
                    last_report = time.perf_counter()
        del net
        seconds = time.perf_counter() - start
        log(f"run {number}/{len(runs)} {run.name}: {predicted} tiles in {seconds:.1f} s, {predicted / max(seconds, 1e-9):.2f} tiles/s")
    return test, oof
