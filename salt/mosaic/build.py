"""From tiles to mosaics: histogram matching, seam descriptors, matching, assembly.

`assemble_tiles` works on an array of tiles (tests, benchmarks); `salt.mosaic.dataset`
applies it to a data directory and caches the table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from salt.data.histogram import match_histograms, mean_histogram
from salt.mosaic.assembly import Layout, assemble
from salt.mosaic.edges import BOTTOM, DIRECTIONS, near_constant_tiles, side_descriptors
from salt.mosaic.evidence import JoinRules, SeamEvidence, closed_squares
from salt.mosaic.matching import best_matches, candidate_links
from salt.settings import defaults_block, settings_from_block, store_schema


@dataclass(frozen=True)
class AssemblySettings:
    """How tiles are matched and assembled (the ``assembly`` config block).

    histogram_match: map tiles onto their mean histogram before describing edges.
    extrapolation: pixels beyond its edge at which each side predicts the seam.
    near_constant_share: a tile whose most common grey level covers this share of it is
        never matched (the black no-data tiles, and no-data tiles but for a sliver).
    min_side_std: a side whose outer two rows/columns vary less than this (grey levels in
        [0, 1]) is never matched.
    flat_side_share: a side whose most common level covers this share of its outer two
        rows/columns (a no-data stretch along the edge) is never matched.
    max_distance, max_ratio, mutual: when a link is the only seam of a join, it must be
        this close (RMS difference of standardised descriptors), pass this ratio test
        (best / second-best) and, with `mutual`, be the best match of both sides.
    squares: a lone link that is a side of a 2×2 square of mutual-best links may join
        whatever its distance and ratio.
    min_support: when a join makes several seams, this share of them must be the best
        match of one of their sides (see `salt.mosaic.evidence`).
    """

    histogram_match: bool = True
    extrapolation: float = 0.5
    near_constant_share: float = 0.9
    min_side_std: float = 0.02
    flat_side_share: float = 0.5
    max_distance: float = 0.8
    max_ratio: float = 0.65
    mutual: bool = True
    squares: bool = True
    min_support: float = 0.34

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> AssemblySettings:
        """From a config mapping; keys not given keep their defaults, unknown keys and wrong
        types are errors. Ints become floats where the field is a float, so `1` and `1.0`
        give one cache key."""
        return settings_from_block(cls, block, "assembly")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rules(self) -> JoinRules:
        return JoinRules(self.max_distance, self.max_ratio, self.mutual, self.squares, self.min_support)


store_schema("assembly", defaults_block(AssemblySettings))  # conf/assembly/*.yaml build on it


@dataclass(frozen=True)
class Assembly:
    """The result of `assemble_tiles` on N tiles.

    layout: positions of every tile (singletons included).
    evidence: descriptors, best matches and candidate links of both directions.
    usable: (N,) bool, tiles that are not constant or near-constant.
    timings: seconds per step.
    """

    layout: Layout
    evidence: SeamEvidence
    usable: np.ndarray
    timings: dict[str, float]


def assemble_tiles(images: np.ndarray, settings: AssemblySettings = AssemblySettings()) -> Assembly:
    """Assemble (N, 101, 101) uint8 tiles into mosaics."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    images = np.asarray(images)
    usable = ~near_constant_tiles(images, settings.near_constant_share)
    if settings.histogram_match and usable.any():
        matched = match_histograms(images, mean_histogram(images))
    else:
        matched = images.astype(np.float32) / np.float32(255)
    lap("histogram")
    sides, forward, backward, links = {}, {}, {}, {}
    for direction in DIRECTIONS:
        desc = side_descriptors(
            matched,
            direction,
            extrapolation=settings.extrapolation,
            min_side_std=settings.min_side_std,
            flat_side_share=settings.flat_side_share,
        )
        # Constant tiles have no usable side anyway; near-constant ones can keep a side
        # that varies, which is what lets a tile at a no-data boundary join its mosaic.
        sides[direction] = desc.restrict(usable)
        forward[direction], backward[direction] = best_matches(sides[direction])
        links[direction] = candidate_links(forward[direction], backward[direction])
        lap(f"match {'bottom' if direction == BOTTOM else 'right'}")
    evidence = SeamEvidence(sides, forward, backward, links, settings.rules, closed_squares(links, len(images)))
    layout = assemble_evidence(len(images), evidence)
    lap("assemble")
    return Assembly(layout=layout, evidence=evidence, usable=usable, timings=timings)


def assemble_evidence(n: int, evidence: SeamEvidence) -> Layout:
    """Join the candidate links of `evidence` into a layout of n tiles, each join judged by it."""
    links = evidence.links
    a = np.concatenate([links[d].a for d in DIRECTIONS])
    b = np.concatenate([links[d].b for d in DIRECTIONS])
    direction = np.concatenate([np.full(len(links[d].a), d) for d in DIRECTIONS])
    index = np.concatenate([np.arange(len(links[d].a)) for d in DIRECTIONS])
    distance = np.concatenate([links[d].distance for d in DIRECTIONS])
    ratio = np.concatenate([links[d].ratio for d in DIRECTIONS])
    # Most distinctive first (the ratio test separated true from chance matches better
    # than the distance on the real tiles), ties broken so the result is deterministic.
    order = np.lexsort((b, a, direction, distance, ratio))

    def judge(i: int, upper: np.ndarray, lower: np.ndarray, kind: np.ndarray) -> bool:
        return evidence.accepts(int(direction[i]), int(index[i]), upper, lower, kind)

    return assemble(n, a, b, direction, order, judge)
