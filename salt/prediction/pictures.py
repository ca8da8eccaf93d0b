"""Mosaic pictures of a prediction: truth, predicted masks and the post-processing's edits.

Drawn with `salt.mosaic.render.render` (tiles histogram-matched, test tiles tinted blue,
train truth as a red fill and outline, predictions as a green outline), with the edits of
the post-processing laid over it: salt it added in yellow, salt it removed in magenta.
On train tiles the prediction shown is the out-of-fold one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from salt.data.tiles import TileSet
from salt.errors import SaltError
from salt.files import atomic_file
from salt.geometry import TILE_SIZE
from salt.mosaic.render import MosaicPicture, chosen_mosaics, load_tiles, render
from salt.prediction.splits import SplitMasks

ADDED = np.array((0, 220, 255), dtype=np.float32)  # yellow, BGR
REMOVED = np.array((255, 0, 255), dtype=np.float32)  # magenta, BGR
EDIT_ALPHA = 0.6
LEGEND = "red = truth (train tiles); green = prediction (out-of-fold on train); yellow = added by post-processing; magenta = removed"


def draw_edits(canvas: np.ndarray, x: np.ndarray, y: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
    """Blend the edits into a rendered mosaic (header above the tile area), in place.

    Args:
        canvas: (H, W, 3) uint8 BGR from `render` at scale 1; the tile area is its last
            rows × 101 rows.
        x, y: (K,) cell column and row of each tile, min 0.
        before, after: (K, 101, 101) bool masks before and after post-processing.
    """
    top = canvas.shape[0] - (int(y.max()) + 1) * TILE_SIZE
    for k in range(len(x)):
        added, removed = after[k] & ~before[k], before[k] & ~after[k]
        if not (added.any() or removed.any()):
            continue
        rows = slice(top + int(y[k]) * TILE_SIZE, top + (int(y[k]) + 1) * TILE_SIZE)
        cols = slice(int(x[k]) * TILE_SIZE, (int(x[k]) + 1) * TILE_SIZE)
        window = canvas[rows, cols].astype(np.float32)
        for pixels, colour in ((added, ADDED), (removed, REMOVED)):
            window[pixels] = (1 - EDIT_ALPHA) * window[pixels] + EDIT_ALPHA * colour
        canvas[rows, cols] = np.clip(window, 0, 255).astype(np.uint8)


def write_mosaic_pictures(
    table: pd.DataFrame,
    tiles: TileSet,
    mosaic_ids: Sequence[int],
    out_dir: str | os.PathLike,
    *,
    truth: Mapping[str, np.ndarray],
    before: Mapping[str, np.ndarray],
    after: Mapping[str, np.ndarray],
    scale: float = 1.0,
) -> list[Path]:
    """Write ``mosaic_<id>.png`` for each mosaic id; returns the paths.

    Args:
        table: mosaic table (id, x, y, mosaic_id).
        tiles: images of every tile the table names (ids, images (N, 101, 101)).
        truth: {id: (101, 101) bool} masks of train tiles.
        before, after: {id: (101, 101) bool} predictions before and after post-processing;
            tiles in neither are drawn without a prediction.
    """
    index = {tile_id: i for i, tile_id in enumerate(tiles.ids.tolist())}
    empty = np.zeros((TILE_SIZE, TILE_SIZE), dtype=bool)
    written = []
    for mosaic_id in mosaic_ids:
        rows = table[(table.mosaic_id == mosaic_id) & table.id.isin(index)]
        if rows.empty:
            raise SaltError(f"mosaic {mosaic_id}: none of its tiles is in the data dir")
        ids = rows.id.tolist()
        x, y = rows.x.to_numpy(), rows.y.to_numpy()
        x, y = x - x.min(), y - y.min()
        train = np.array([tile_id in truth for tile_id in ids])
        picture = MosaicPicture(
            images=tiles.images[[index[tile_id] for tile_id in ids]],
            x=x,
            y=y,
            train=train,
            masks=np.stack([truth.get(tile_id, empty) for tile_id in ids]),
            predicted=np.stack([before.get(tile_id, empty) for tile_id in ids]),
            has_prediction=np.array([tile_id in before for tile_id in ids]),
            title=f"mosaic {mosaic_id}: {len(ids)} tiles ({int(train.sum())} train, {int((~train).sum())} test). {LEGEND}",
        )
        canvas = render(picture)
        draw_edits(
            canvas,
            x,
            y,
            np.stack([before.get(tile_id, empty) for tile_id in ids]),
            np.stack([after.get(tile_id, before.get(tile_id, empty)) for tile_id in ids]),
        )
        if scale != 1.0:
            size = (max(1, round(canvas.shape[1] * scale)), max(1, round(canvas.shape[0] * scale)))
            canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
        path = Path(out_dir) / f"mosaic_{mosaic_id}.png"
        with atomic_file(path) as tmp:
            if not cv2.imwrite(str(tmp), canvas, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
                raise SaltError(f"{path}: could not write the picture")
        written.append(path)
    return written


def prediction_pictures(
    table: pd.DataFrame,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    truth: Mapping[str, np.ndarray],
    splits: Sequence[SplitMasks | None],
    *,
    largest: int,
    ids: Sequence[int] = (),
    scale: float = 1.0,
) -> list[Path]:
    """The pictures of `predict`: the `largest` mosaics of `table` (or those of `ids`) with
    the truth of train tiles and each split's predictions before and after post-processing."""
    before: dict[str, np.ndarray] = {}
    after: dict[str, np.ndarray] = {}
    for masks in splits:
        if masks is not None:
            for i in np.flatnonzero(masks.covered):
                before[masks.ids[i]], after[masks.ids[i]] = masks.before[i], masks.after[i]
    mosaic_ids = chosen_mosaics(table, largest, list(ids))
    tiles = load_tiles(data_dir, histogram_match=True)
    return write_mosaic_pictures(table, tiles, mosaic_ids, out_dir, truth=truth, before=before, after=after, scale=scale)
