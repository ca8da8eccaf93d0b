"""Complete missed corners: where a salt boundary leaves the tile below through its top edge
and enters the tile beside through its facing edge, it must cross the corner of the
(nearly empty) predicted tile between them. The corner is filled up to a cubic curve that
joins the two crossings and leaves each with the direction the boundary has in that
neighbour, so the boundary's first derivative is continuous at both ends.

    beside = (row, col ± 1)     | tile | beside |      salt in `below` reaches the tile's
    below  = (row + 1, col)     | below| diag   |      bottom edge, salt in `beside` its side

The curve is a cubic Hermite segment in the plane (x = column, y = row, pixel j spanning
[j, j + 1]): P(0) = the crossing on the bottom edge, P(1) = the crossing on the side edge,
P'(0) and P'(1) along the neighbours' boundaries, both scaled to the chord's length.
"""

from __future__ import annotations

import numpy as np
from matplotlib.path import Path as PolygonPath

from salt.geometry import TILE_SIZE
from salt.prediction.postprocess.edges import single_run_to_end
from salt.prediction.postprocess.grid import TileMasks

CURVE_SAMPLES = 64
OVERSHOOT = 0.5  # pixels a curve may bulge past the tile's edge before it is refused
_CENTRES = np.stack(np.meshgrid(np.arange(TILE_SIZE) + 0.5, np.arange(TILE_SIZE) + 0.5, indexing="xy"), -1).reshape(-1, 2)


def complete_corners(tiles: TileMasks, *, max_salt_pixels: int = 10, max_area: float = 0.25, tangent_depth: int = 4) -> int:
    """Fill missed bottom corners of predicted tiles, in place; returns tiles changed.

    Args:
        max_salt_pixels: only tiles predicted with at most this much salt are completed.
        max_area: a corner covering more than this share of the tile is not "small" and is
            left alone.
        tangent_depth: rows (columns) into the neighbour over which the boundary's
            direction is measured.
    """
    changed = 0
    for cells in tiles.grid.cells:
        rows, cols = cells.shape
        for row in range(rows - 1):
            for col in range(cols):
                tile = cells[row, col]
                below = cells[row + 1, col]
                if not tiles.editable(tile) or below < 0 or tiles.masks[tile].sum() > max_salt_pixels:
                    continue
                completed = tiles.masks[tile].copy()
                for side in (1, -1):
                    if not 0 <= col + side < cols or cells[row, col + side] < 0:
                        continue
                    diagonal = cells[row + 1, col + side]
                    corner = corner_mask(
                        tiles.masks[below],
                        tiles.masks[cells[row, col + side]],
                        None if diagonal < 0 else tiles.masks[diagonal],
                        side,
                        tangent_depth,
                    )
                    if corner is not None and corner.mean() <= max_area:
                        completed |= corner
                if (completed != tiles.masks[tile]).any():
                    tiles.masks[tile] = completed
                    changed += 1
    return changed


def corner_mask(below: np.ndarray, beside: np.ndarray, diagonal: np.ndarray | None, side: int, depth: int = 4) -> np.ndarray | None:
    """(101, 101) bool corner of salt implied by the neighbours, or None when they imply none.

    Args:
        below: mask of the tile underneath.
        beside: mask of the tile to the right (side=1) or left (side=-1).
        diagonal: mask of the tile below `beside`, or None when there is none; its corner
            touching the tile must be salt.
        side: 1 for the bottom-right corner, -1 for the bottom-left one.
        depth: how far into the neighbours the boundary's direction is measured.
    """
    # The salt of `below` must reach its top edge on the corner's side, that of `beside`
    # its facing edge at the bottom: one run each, which fixes where the boundary crosses.
    end = "stop" if side == 1 else "start"
    near, far = (0, depth) if side == 1 else (-1, -1 - depth)
    bottom_cross = single_run_to_end(below[0], end)
    side_cross = single_run_to_end(beside[:, near], "stop")
    if bottom_cross is None or side_cross is None:
        return None
    if diagonal is not None and not diagonal[0, near]:
        return None
    bottom_deep = single_run_to_end(below[depth], end)
    side_deep = single_run_to_end(beside[:, far], "stop")
    corner_x = TILE_SIZE if side == 1 else 0
    start = np.array([bottom_cross, TILE_SIZE], dtype=np.float64)
    stop = np.array([corner_x, side_cross], dtype=np.float64)
    # Directions of the boundary: in `below` followed upwards into the tile, in `beside`
    # followed away from it; straight up / straight across when the deeper row or column
    # has no single crossing to measure against.
    leaving_below = np.array([bottom_cross - (bottom_cross if bottom_deep is None else bottom_deep), -depth], dtype=np.float64)
    entering_beside = np.array([side * depth, (side_cross if side_deep is None else side_deep) - side_cross], dtype=np.float64)
    curve = hermite_curve(start, stop, leaving_below, entering_beside)
    if (curve < -OVERSHOOT).any() or (curve > TILE_SIZE + OVERSHOOT).any():
        return None
    polygon = np.vstack([curve, [[corner_x, TILE_SIZE]]])
    inside = PolygonPath(polygon).contains_points(_CENTRES).reshape(TILE_SIZE, TILE_SIZE)
    return inside if inside.any() else None


def hermite_curve(start: np.ndarray, stop: np.ndarray, start_direction: np.ndarray, stop_direction: np.ndarray, samples: int = CURVE_SAMPLES) -> np.ndarray:
    """(samples, 2) points of the cubic from `start` to `stop` whose derivative is
    `start_direction` at the start and `stop_direction` at the stop, each scaled to the
    chord's length (a unit-free choice that keeps the curve from looping)."""
    chord = float(np.linalg.norm(stop - start))
    tangents = [chord * d / max(float(np.linalg.norm(d)), 1e-12) for d in (start_direction, stop_direction)]
    t = np.linspace(0.0, 1.0, samples)[:, None]
    h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
    return h00 * start + h10 * tangents[0] + h01 * stop + h11 * tangents[1]
