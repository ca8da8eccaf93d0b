"""Assembling accepted links into mosaics with integer cell positions.

Links are taken in the order given (the most distinctive first) and merged greedily, as
in Kruskal's algorithm, into components that each keep a grid of occupied cells. A link
is refused when it would

- join a component to itself at a different offset than the one it already has (the
  "a's right neighbour's bottom neighbour is not a's bottom neighbour's right neighbour"
  contradiction, and every longer loop of the same kind), or
- put two tiles into one cell when two components are overlaid (the collision the
  original solution left in its output), or
- fail the `judge`: it sees every pair of tiles that the join makes neighbours (the
  linked pair first), so two components that a link glues side by side must also fit
  along the rest of the join, not only at the linked pair.

So every tile sits in one cell of one mosaic and no cell holds two tiles, by construction.
Merging moves the smaller component into the larger, so the whole run is O(L log N)
for L links and N tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from salt.mosaic.edges import BOTTOM, OFFSETS, RIGHT

# judge(link index, upper, lower, direction) → whether to make the join. upper, lower and
# direction are (K,) arrays of the pairs that become neighbours, the linked pair first:
# lower[k] is upper[k]'s neighbour below (BOTTOM) or to the right (RIGHT).
Judge = Callable[[int, np.ndarray, np.ndarray, np.ndarray], bool]


@dataclass(frozen=True)
class Layout:
    """Positions of N tiles.

    mosaic: (N,) int64 component label, 0.. in order of decreasing size (ties in a fixed
            order); singletons are components too
    x, y:   (N,) int64 column and row in the component, min 0 in each (y grows downwards)
    refused: number of candidate links the layout disagrees with (contradiction,
             collision or a join the judge refused)
    """

    mosaic: np.ndarray
    x: np.ndarray
    y: np.ndarray
    refused: int = 0

    def sizes(self) -> np.ndarray:
        """(N,) number of tiles in each tile's mosaic."""
        return np.bincount(self.mosaic)[self.mosaic]


def assemble(
    n: int,
    a: np.ndarray,
    b: np.ndarray,
    direction: np.ndarray,
    order: np.ndarray,
    judge: Judge | None = None,
    *,
    max_passes: int = 10,
) -> Layout:
    """Merge links into components, in `order`, in passes.

    A join the judge refuses may become believable later, once the components on either
    side have grown and the join would create more seams to vote; so refused links are
    tried again, in the same order, until a pass makes no join (or `max_passes`). Links
    refused for a collision or a contradiction are final: growing components never
    remove either.

    Args:
        n: number of tiles.
        a, b, direction: (L,) link i says tile b[i] is tile a[i]'s neighbour in direction[i]
            (BOTTOM or RIGHT).
        order: (L,) link indices, the order to try them in (strongest first).
        judge: decides whether a join that fits the grid is made; None makes every one.
    """
    grid = _Grid(n)
    pending = [int(i) for i in order]
    for _ in range(max_passes):
        retry = []
        for i in pending:
            outcome = grid.try_join(int(a[i]), int(b[i]), int(direction[i]), i, judge)
            if outcome == _JUDGED:
                retry.append(i)
        if len(retry) == len(pending):
            break
        pending = retry
    # Links that disagree with the final layout, whatever the reason.
    ok = (grid.component[a] == grid.component[b]) & (grid.pos_x[b] - grid.pos_x[a] == np.array([OFFSETS[int(d)][0] for d in direction]))
    ok &= grid.pos_y[b] - grid.pos_y[a] == np.array([OFFSETS[int(d)][1] for d in direction])
    return _normalise(grid.component, grid.pos_x, grid.pos_y, int((~ok).sum()) if len(a) else 0)


_JOINED, _SAME, _CLASH, _JUDGED = "joined", "same", "clash", "judged"


class _Grid:
    """Components with their occupied cells; tile t sits at (pos_x[t], pos_y[t]) of
    component[t]. A component is labelled by one of its tiles."""

    def __init__(self, n: int) -> None:
        self.component = np.arange(n)
        self.pos_x = np.zeros(n, dtype=np.int64)
        self.pos_y = np.zeros(n, dtype=np.int64)
        self.members: dict[int, list[int]] = {}
        self.cells: dict[int, dict[tuple[int, int], int]] = {}

    def try_join(self, ta: int, tb: int, d: int, link: int, judge: Judge | None) -> str:
        """Put tb at ta's neighbour cell in direction d, moving its whole component."""
        dx, dy = OFFSETS[d]
        pos_x, pos_y = self.pos_x, self.pos_y
        ca, cb = int(self.component[ta]), int(self.component[tb])
        if ca == cb:
            agrees = (pos_x[tb] - pos_x[ta], pos_y[tb] - pos_y[ta]) == (dx, dy)
            return _SAME if agrees else _CLASH
        # Move the smaller component onto the larger one: O(N log N) moves in all.
        if len(self.members.get(ca, (ta,))) >= len(self.members.get(cb, (tb,))):
            keep, move = ca, cb
            shift_x, shift_y = pos_x[ta] + dx - pos_x[tb], pos_y[ta] + dy - pos_y[tb]
        else:
            keep, move = cb, ca
            shift_x, shift_y = pos_x[tb] - dx - pos_x[ta], pos_y[tb] - dy - pos_y[ta]
        keep_cells = self.cells.get(keep) or {(int(pos_x[keep]), int(pos_y[keep])): keep}
        moving = self.members.get(move, [move])
        new_cells = [(int(pos_x[t] + shift_x), int(pos_y[t] + shift_y)) for t in moving]
        if any(cell in keep_cells for cell in new_cells):
            return _CLASH
        if judge is not None and not judge(link, *_new_neighbours(ta, tb, d, keep_cells, moving, new_cells)):
            return _JUDGED
        for t, cell in zip(moving, new_cells):
            self.component[t] = keep
            pos_x[t], pos_y[t] = cell
            keep_cells[cell] = t
        self.cells[keep] = keep_cells
        self.members.setdefault(keep, [keep]).extend(moving)
        self.members.pop(move, None)
        self.cells.pop(move, None)
        return _JOINED


def _new_neighbours(
    ta: int,
    tb: int,
    direction: int,
    keep_cells: dict[tuple[int, int], int],
    moving: list[int],
    new_cells: list[tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(upper, lower, direction) of every pair the join makes neighbours, (ta, tb) first."""
    upper, lower, kind = [ta], [tb], [direction]
    for t, (x, y) in zip(moving, new_cells):
        for (dx, dy), d in (((0, 1), BOTTOM), ((1, 0), RIGHT)):
            below = keep_cells.get((x + dx, y + dy))
            if below is not None and (t, below, d) != (ta, tb, direction):
                upper.append(t), lower.append(below), kind.append(d)
            above = keep_cells.get((x - dx, y - dy))
            if above is not None and (above, t, d) != (ta, tb, direction):
                upper.append(above), lower.append(t), kind.append(d)
    return np.array(upper), np.array(lower), np.array(kind)


def _normalise(component: np.ndarray, pos_x: np.ndarray, pos_y: np.ndarray, refused: int) -> Layout:
    """Relabel components by decreasing size and shift each so its min x and min y are 0."""
    labels, inverse, counts = np.unique(component, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    # Components are labelled by a member tile index; order by size, then by that index.
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.lexsort((labels, -counts))] = np.arange(len(labels))
    mosaic = rank[inverse]
    min_x = np.full(len(labels), np.iinfo(np.int64).max)
    min_y = np.full(len(labels), np.iinfo(np.int64).max)
    np.minimum.at(min_x, mosaic, pos_x)
    np.minimum.at(min_y, mosaic, pos_y)
    return Layout(mosaic=mosaic, x=pos_x - min_x[mosaic], y=pos_y - min_y[mosaic], refused=refused)
