"""Pictures of mosaics: tiles at their cells, masks overlaid, train and test told apart.

    python -m salt.mosaic.render data.dir=DIR render.mosaics=mosaics.csv render.out=DIR
        [render.largest=5 | render.ids=[3,17]] [render.predictions=submission.csv] [render.scale=0.5]

Without ``render.mosaics`` the table is assembled (or read from the cache) with the
``assembly`` settings, as ``python -m salt.mosaic`` does.

Each mosaic becomes one PNG (``mosaic_<id>.png``): tiles are drawn histogram-matched (the
published tiles were min-max normalised one by one, so raw tiles show brightness steps at
every seam that are not in the rock), empty cells dark blue, train masks as a translucent
red fill with a red outline, predicted masks as a green outline. Test tiles are tinted
slightly blue and train tiles keep their grey, so the split shows without hiding the seams
behind frames. A header line gives the mosaic id, its size and the legend.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from salt.data.histogram import constant_tiles, match_histograms, mean_histogram
from salt.data.tiles import TileSet, load_split
from salt.errors import DataError, SaltError
from salt.files import atomic_file
from salt.geometry import TILE_SIZE

# Colours, BGR as OpenCV writes them.
EMPTY_CELL = (60, 30, 20)  # dark blue
TRAIN_MASK = (40, 40, 230)  # red
PREDICTED_MASK = (60, 220, 60)  # green
TEST_TINT = np.array([1.0, 0.88, 0.76], dtype=np.float32)  # multiplies B, G, R of test tiles
MASK_ALPHA = 0.3  # opacity of the train mask fill
HEADER = 22  # pixels per line of the title band


@dataclass(frozen=True)
class MosaicPicture:
    """What one picture shows.

    images:    (K, 101, 101) uint8 or float in [0, 1], the mosaic's tiles
    x, y:      (K,) int cell column and row (y grows downwards), min 0
    train:     (K,) bool, labelled tiles
    masks:     (K, 101, 101) bool train masks (read where `train`), or None
    predicted: (K, 101, 101) bool predicted masks, or None; `has_prediction` (K,) bool
               says which tiles have one
    title:     header text
    """

    images: np.ndarray
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    masks: np.ndarray | None = None
    predicted: np.ndarray | None = None
    has_prediction: np.ndarray | None = None
    title: str = ""


def render(picture: MosaicPicture, *, scale: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8 BGR image of the mosaic; H = header + rows × 101 × scale."""
    cols, rows = int(picture.x.max()) + 1, int(picture.y.max()) + 1
    canvas = np.empty((rows * TILE_SIZE, cols * TILE_SIZE, 3), dtype=np.uint8)
    canvas[:] = EMPTY_CELL
    for k in range(len(picture.x)):
        tile = _grey(picture.images[k])
        colour = np.repeat(tile[..., None], 3, axis=2).astype(np.float32)
        if not picture.train[k]:
            colour *= TEST_TINT
        if picture.train[k] and picture.masks is not None:
            colour = _fill(colour, picture.masks[k], TRAIN_MASK)
        window = _window(picture.x[k], picture.y[k])
        canvas[window] = np.clip(colour, 0, 255).astype(np.uint8)
        if picture.train[k] and picture.masks is not None:
            _outline(canvas[window], picture.masks[k], TRAIN_MASK)
        if picture.predicted is not None and (picture.has_prediction is None or picture.has_prediction[k]):
            _outline(canvas[window], picture.predicted[k], PREDICTED_MASK)
    if scale != 1.0:
        size = (max(1, round(canvas.shape[1] * scale)), max(1, round(canvas.shape[0] * scale)))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    return _with_header(canvas, picture.title)


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 stays; floats in [0, 1] become 0–255."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(np.asarray(image, dtype=np.float32) * 255), 0, 255).astype(np.uint8)


def _window(x: int, y: int) -> tuple[slice, slice]:
    return (slice(int(y) * TILE_SIZE, (int(y) + 1) * TILE_SIZE), slice(int(x) * TILE_SIZE, (int(x) + 1) * TILE_SIZE))


def _fill(colour: np.ndarray, mask: np.ndarray, bgr: tuple[int, int, int]) -> np.ndarray:
    """Blend `bgr` over the mask's pixels with opacity MASK_ALPHA."""
    out = colour.copy()
    out[mask] = (1 - MASK_ALPHA) * out[mask] + MASK_ALPHA * np.array(bgr, dtype=np.float32)
    return out


def _outline(tile_bgr: np.ndarray, mask: np.ndarray, bgr: tuple[int, int, int]) -> None:
    """Draw the mask's boundary pixels (inside the mask) in `bgr`, in place.

    The tile's own border is not a boundary: a mask that runs off the tile continues in
    the neighbour, and outlining it would draw a line along every seam.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    padded = np.pad(mask, 1, mode="edge")
    eroded = cv2.erode(padded.astype(np.uint8), np.ones((3, 3), np.uint8))[1:-1, 1:-1].astype(bool)
    tile_bgr[mask & ~eroded] = bgr


def _with_header(canvas: np.ndarray, title: str) -> np.ndarray:
    """The canvas under a white band holding `title`, wrapped to the canvas width (the
    canvas is widened with white when one word is wider than it)."""
    font, size, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    width = lambda text: cv2.getTextSize(text, font, size, thickness)[0][0] + 8  # noqa: E731
    lines: list[str] = []
    for word in title.split():
        if lines and width(f"{lines[-1]} {word}") <= canvas.shape[1]:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    total_width = max([canvas.shape[1], *(width(line) for line in lines)])
    if total_width > canvas.shape[1]:
        canvas = np.pad(canvas, ((0, 0), (0, total_width - canvas.shape[1]), (0, 0)), constant_values=255)
    header = np.full((HEADER * max(len(lines), 1), total_width, 3), 255, dtype=np.uint8)
    for row, line in enumerate(lines):
        cv2.putText(header, line, (4, HEADER * (row + 1) - 7), font, size, (0, 0, 0), thickness, cv2.LINE_AA)
    return np.concatenate([header, canvas], axis=0)


# --- a data directory's mosaics --------------------------------------------------------


def render_mosaics(
    table: pd.DataFrame,
    tiles: TileSet,
    mosaic_ids: Sequence[int],
    out_dir: str | os.PathLike,
    *,
    predictions: dict[str, np.ndarray] | None = None,
    scale: float = 1.0,
) -> list[Path]:
    """Write ``mosaic_<id>.png`` under `out_dir` for each of `mosaic_ids`.

    Args:
        table: the mosaic table (id, x, y, mosaic_id).
        tiles: every tile the table names (images, masks where labelled); `tiles.masks`
            covers the first `n_train` tiles as returned by `load_tiles`.
        predictions: {id: (101, 101) bool} predicted masks to outline, or None.
    """
    index = {tile_id: i for i, tile_id in enumerate(tiles.ids.tolist())}
    n_labelled = 0 if tiles.masks is None else len(tiles.masks)
    written = []
    for mosaic_id in mosaic_ids:
        rows = table[table.mosaic_id == mosaic_id]
        if rows.empty:
            raise SaltError(f"mosaic {mosaic_id}: not in the table (ids run 0..{table.mosaic_id.max()})")
        missing = [tile_id for tile_id in rows.id if tile_id not in index]
        if missing:
            raise DataError(f"mosaic {mosaic_id}: tile {missing[0]} is not in the data dir")
        where = np.array([index[tile_id] for tile_id in rows.id])
        train = where < n_labelled
        masks = np.zeros((len(where), TILE_SIZE, TILE_SIZE), dtype=bool)
        if tiles.masks is not None:
            masks[train] = tiles.masks[where[train]]
        predicted = has_prediction = None
        if predictions is not None:
            has_prediction = np.array([tile_id in predictions for tile_id in rows.id])
            predicted = np.stack([predictions.get(tile_id, np.zeros((TILE_SIZE, TILE_SIZE), bool)) for tile_id in rows.id])
        x, y = rows.x.to_numpy(), rows.y.to_numpy()
        x, y = x - x.min(), y - y.min()
        title = (
            f"mosaic {mosaic_id}: {len(rows)} tiles ({int(train.sum())} train grey, {int((~train).sum())} test blue); "
            f"red = train mask" + ("; green = predicted" if predictions is not None else "")
        )
        picture = MosaicPicture(tiles.images[where], x, y, train, masks, predicted, has_prediction, title)
        path = Path(out_dir) / f"mosaic_{mosaic_id}.png"
        with atomic_file(path) as tmp:
            if not cv2.imwrite(str(tmp), render(picture, scale=scale)):
                raise SaltError(f"{path}: could not write the picture")
        written.append(path)
    return written


def load_tiles(data_dir: str | os.PathLike, *, histogram_match: bool = True) -> TileSet:
    """Train tiles (with masks) then test tiles of a data dir, as one TileSet; images are
    histogram-matched (float32 in [0, 1]) when asked, constant tiles left as they are."""
    splits = [split for split in ("train", "test") if (Path(data_dir) / split / "images").is_dir()]
    if not splits:
        raise DataError(f"data dir {data_dir}: holds neither train/images nor test/images")
    parts = [load_split(data_dir, split) for split in splits]
    images = np.concatenate([part.images for part in parts])
    if histogram_match and not constant_tiles(images).all():
        images = match_histograms(images, mean_histogram(images))
    masks = parts[0].masks if splits[0] == "train" else None
    return TileSet(
        ids=np.concatenate([part.ids for part in parts]),
        images=images,
        depths=np.concatenate([part.depths for part in parts]),
        masks=masks,
    )


def chosen_mosaics(table: pd.DataFrame, largest: int | None, ids: Sequence[int] | None) -> list[int]:
    """`ids` when given, else the `largest` mosaics (the table numbers them by size)."""
    if ids:
        return [int(i) for i in ids]
    sizes = table.mosaic_id.value_counts()
    ordered = sorted(sizes.index, key=lambda m: (-sizes[m], m))
    return [int(m) for m in ordered[: int(largest or 0)]]
