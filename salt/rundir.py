"""The layout of a run directory, and the record of the tiles a run was validated on.

``python train.py`` writes, under the run's output directory::

    config.yaml                  the fully resolved training config
    validation_ids.txt           the ids of the tiles held out for validation (see below)
    checkpoints/best.ckpt        the best epoch by val/score; checkpoints/last.ckpt the latest
    metrics/metrics.csv          one row per logged step and epoch
    training_curves.png

Prediction scores a run out-of-fold on exactly the ids in ``validation_ids.txt``, not on a
fold recomputed from today's fold code: fold code that changed after the run was trained
would otherwise hand it tiles it trained on, and inflate the report without a word. A run
without the file (trained before it existed) is scored on its recomputed fold, with a
warning saying so.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from salt.errors import SaltError
from salt.files import atomic_file

CONFIG = "config.yaml"
VALIDATION_IDS = "validation_ids.txt"
METRICS = Path("metrics") / "metrics.csv"
CURVES = "training_curves.png"
CHECKPOINTS = "checkpoints"


def read_metrics_csv(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Lightning's CSVLogger file -> {metric: [(epoch, value), ...]} (empty cells skipped).

    Rows logged by step without an epoch (the learning-rate monitor's, at the first step of
    an epoch) belong to the first epoch whose rows reach their step, or to the epoch after
    the last one logged (the epoch in progress)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    # The last step each epoch reached, in step order.
    ends: dict[int, int] = {}
    for row in rows:
        if row.get("epoch") and row.get("step"):
            epoch = int(float(row["epoch"]))
            ends[epoch] = max(ends.get(epoch, -1), int(float(row["step"])))
    epochs_by_end = sorted((end, epoch) for epoch, end in ends.items())
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        if row.get("epoch"):
            epoch = int(float(row["epoch"]))
        elif row.get("step"):
            step = int(float(row["step"]))
            at = bisect.bisect_left(epochs_by_end, (step, -1))
            epoch = epochs_by_end[at][1] if at < len(epochs_by_end) else max(ends, default=-1) + 1
        else:
            continue
        for name, value in row.items():
            if name in ("epoch", "step") or value in ("", None):
                continue
            series.setdefault(name, []).append((epoch, float(value)))
    return series


def checkpoint_path(run_dir: str | os.PathLike, name: str = "best") -> Path:
    """``checkpoints/<name>.ckpt`` of the run (``best`` or ``last``)."""
    return Path(run_dir) / CHECKPOINTS / f"{name}.ckpt"


def fold_fingerprint(ids: Sequence[str], folds: Sequence[int]) -> str:
    """sha256 of the (id, fold) table, independent of row order: equal tables, equal prints."""
    rows = sorted(f"{tile_id},{int(fold)}" for tile_id, fold in zip(ids, folds))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def write_validation_ids(run_dir: str | os.PathLike, ids: Sequence[str], *, fold: int, fingerprint: str) -> Path:
    """Write ``validation_ids.txt``: two ``#`` header lines (fold, fold-table sha256), one id per line."""
    path = Path(run_dir) / VALIDATION_IDS
    lines = [f"# fold {int(fold)}", f"# fold table sha256 {fingerprint}", *map(str, ids)]
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def read_validation_ids(run_dir: str | os.PathLike) -> np.ndarray | None:
    """The ids the run was validated on, or None where the run records none."""
    path = Path(run_dir) / VALIDATION_IDS
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise SaltError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None
    ids = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not ids:
        raise SaltError(f"{path}: holds no tile ids")
    return np.array(ids)


def validation_positions(run_dir: str | os.PathLike, recorded: np.ndarray, train_ids: np.ndarray) -> np.ndarray:
    """(M,) positions in `train_ids` of the recorded validation ids, in `train_ids` order;
    one line naming the run where any recorded id is not among the training tiles."""
    position = {tile_id: n for n, tile_id in enumerate(train_ids.tolist())}
    missing = [tile_id for tile_id in recorded.tolist() if tile_id not in position]
    if missing:
        raise SaltError(
            f"run {run_dir}: {len(missing)} of its {len(recorded)} validation tiles are not training tiles of "
            f"this data dir (first: {', '.join(missing[:3])}); was it trained on other data?"
        )
    return np.sort(np.array([position[tile_id] for tile_id in recorded.tolist()], dtype=np.int64))
