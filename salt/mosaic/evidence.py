"""Whether a join is believable: the seams it creates, judged by best-match votes.

A join of two components is proposed by one candidate link, but it makes neighbours of
every pair of tiles that end up in adjacent cells. Two kinds of joins:

- The link is the only new seam between usable sides (a tile added at the end of a row,
  two small pieces touching at one tile). Only that seam speaks, so the link must be
  strong on its own: mutual best, distance ≤ `max_distance` and ratio ≤ `max_ratio`, or
  a side of a 2×2 square of mutual-best links (`squares`), which confirms itself.
- Other seams are created too (a row of tiles laid along another, a tile filling a
  corner). Each of the others votes: it is supported when one of its two sides has the
  other as its best match. The join is made when at least `min_support` of them are.
  This is rank-based, so it does not depend on how large distances are in a dataset
  (vertical seams of the synthetic sections correlate far less than horizontal ones),
  and a wrong alignment is refused because a random pair of tiles is almost never a best
  match. The linked seam itself does not vote: it is a best match by construction, and
  counting it let two-seam joins through on the link alone (wrong pairs on synthetic data).

Seams with an unusable side (a black no-data edge) neither support nor oppose a join.

How the thresholds were chosen (benchmarks/mosaic.py, figures in benchmarks/RESULTS.md):

- `max_ratio` = 0.65. On the real tiles, the share of mutual-best links that close a 2×2
  square of mutual-best links (a wrong link almost never does) is 0.90 / 0.85 / 0.81 /
  0.79 for bottom links with ratio in [0, .3) / [.3, .5) / [.5, .6) / [.6, .65), then
  drops to 0.66, 0.55, 0.32, 0.17 over [.65, .7) … [.8, .85); right links fall later
  (0.80 at [.65, .7), 0.60 at [.75, .8)). Looking at the pairs confirms it: above 0.65
  about half of the new two-tile mosaics are visibly wrong, and so does an estimate of
  the wrong lone links (`benchmarks/mosaic.py --missing`: the layout's seams with their
  partner taken away give a side's best chance match): 31 at 0.65, 203 at 0.8, 453 at
  0.87, against 322 and 976 seams added. Synthetic recall does not depend on it (its
  lone vertical links are weak anyway; its sections join by votes). Mosaic folds, which
  only group tiles, take 0.87 (conf/folds/mosaic.yaml).
- `mutual` = true, the conservative choice: dropping it adds 10 real tiles (4,878) and
  nothing on synthetic data. `squares` adds 9 real tiles.
- `max_distance` = 0.8 (r ≈ 0.68) only guards against a lone link with a very good
  ratio and a bad fit; at ratio ≤ 0.65 it removes a handful of links.
- `min_support` = 0.34. With the one-pixel descriptor first tried (see `edges`), joins
  of long synthetic strips whose vertical seams are weak had supports of 0.35–0.47, and
  0.5 lost 57–71 true pairs per 2,800-tile dataset; with the seam-midpoint descriptor
  0.25 / 0.34 / 0.5 give the same synthetic pairs and 4,870 / 4,868 / 4,867 real tiles.
  0.34 keeps one supported seam out of three from carrying a join.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salt.mosaic.edges import BOTTOM, DIRECTIONS, SideDescriptors
from salt.mosaic.matching import BestMatches, Links


@dataclass(frozen=True)
class JoinRules:
    """Thresholds of `SeamEvidence.accepts` (see the module docstring).

    max_distance: RMS difference between standardised descriptors, ``sqrt(2·(1 − r))``.
    max_ratio: best / second-best distance of each side that chose the link.
    mutual: a lone link must be the best match of both its sides.
    squares: a lone link that is a side of a 2×2 square of mutual-best links is strong.
    min_support: share of the other usable new seams that must be a best match of one
        of their sides.
    """

    max_distance: float
    max_ratio: float
    mutual: bool
    squares: bool
    min_support: float


@dataclass(frozen=True)
class SeamEvidence:
    """Everything the judge needs, per direction (BOTTOM, RIGHT): the side descriptors,
    best matches both ways, candidate links, and which links close a mutual square."""

    sides: dict[int, SideDescriptors]
    forward: dict[int, BestMatches]
    backward: dict[int, BestMatches]
    links: dict[int, Links]
    rules: JoinRules
    closed: dict[int, np.ndarray]

    def usable(self, upper: np.ndarray, lower: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """(K,) bool: both sides of the seam can be matched."""
        out = np.zeros(len(upper), dtype=bool)
        for d in DIRECTIONS:
            sel = direction == d
            out[sel] = self.sides[d].near_ok[upper[sel]] & self.sides[d].far_ok[lower[sel]]
        return out

    def supported(self, upper: np.ndarray, lower: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """(K,) bool: the seam is the best match of at least one of its sides."""
        out = np.zeros(len(upper), dtype=bool)
        for d in DIRECTIONS:
            sel = direction == d
            out[sel] = (self.forward[d].partner[upper[sel]] == lower[sel]) | (
                self.backward[d].partner[lower[sel]] == upper[sel]
            )
        return out

    def strong(self, direction: int, index: int) -> bool:
        """Whether candidate link `index` of `direction` may join on its own."""
        links, rules = self.links[direction], self.rules
        if rules.squares and self.closed[direction][index]:
            return True
        return bool(
            (links.mutual[index] or not rules.mutual)
            and links.distance[index] <= rules.max_distance
            and links.ratio[index] <= rules.max_ratio
        )

    def accepts(self, direction: int, index: int, upper: np.ndarray, lower: np.ndarray, kind: np.ndarray) -> bool:
        """Judge the join proposed by link `index` of `direction`; (upper, lower, kind) are
        the seams it creates, the link's own first."""
        # The link's own seam is a best match by construction: only the others vote.
        upper, lower, kind = upper[1:], lower[1:], kind[1:]
        usable = self.usable(upper, lower, kind)
        if not usable.any():
            return self.strong(direction, index)
        support = self.supported(upper[usable], lower[usable], kind[usable]).mean()
        return bool(support >= self.rules.min_support)


def closed_squares(links: dict[int, Links], n: int) -> dict[int, np.ndarray]:
    """For each candidate link, whether it is a side of a 2×2 square of mutual-best links.

    Four tiles a, r (right of a), b (below a), c (below r, right of b) whose four seams are
    all mutual best matches confirm each other: a wrong link almost never closes such a
    loop. Returns, per direction, an (L,) bool array aligned with ``links[direction]``.
    """
    below, right = (_mutual_map(links[d], n) for d in DIRECTIONS)
    above, left = np.full(n + 1, -1), np.full(n + 1, -1)
    for forward_map, backward_map in ((below, above), (right, left)):
        has = np.flatnonzero(forward_map[:n] >= 0)
        backward_map[forward_map[has]] = has
    out = {}
    for d in DIRECTIONS:
        a, b = links[d].a, links[d].b
        mutual = links[d].mutual
        # A vertical link closes a square with the columns to its right or left; a
        # horizontal one with the rows below or above. Index n is "no tile" (-1 wraps to n).
        across, along = (right, below) if d == BOTTOM else (below, right)
        back = left if d == BOTTOM else above
        closes = (_at(along, _at(across, a)) == _at(across, b)) & (_at(across, b) >= 0)
        closes |= (_at(along, _at(back, a)) == _at(back, b)) & (_at(back, b) >= 0)
        out[d] = mutual & closes
    return out


def _mutual_map(links: Links, n: int) -> np.ndarray:
    """(n + 1,) partner of each tile through a mutual link, -1 for none (entry n: none)."""
    partner = np.full(n + 1, -1)
    partner[links.a[links.mutual]] = links.b[links.mutual]
    return partner


def _at(partner: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """partner[tiles] with -1 ("no tile") mapped to -1."""
    return np.where(tiles >= 0, partner[tiles], -1)
