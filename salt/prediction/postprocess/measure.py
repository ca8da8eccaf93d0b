"""How much each rule gains on out-of-fold predictions.

Train tiles are split into groups (`salt.folds`, random by default). For each group,
its tiles are "held out": their out-of-fold predictions stand where the truth would be,
every other train tile is known, and the test tiles keep their test predictions, much as
at test time, where a test tile's known neighbours are the train tiles. The rules run on
that, and the held-out tiles are scored. Every train tile is held out once.

Each rule is measured twice: alone (on the plain thresholded predictions) and in sequence
(after the rules kept before it). With ``keep="helpful"`` a rule is kept only when its
gain in sequence exceeds ``min_gain``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from salt.folds import FoldSettings, folds_for
from salt.geometry import TILE_SIZE
from salt.metric import tile_scores
from salt.prediction.postprocess import Rule, TileMasks, apply_rule
from salt.prediction.postprocess.grid import MosaicGrid

PIXELS = TILE_SIZE * TILE_SIZE


@dataclass(frozen=True)
class RuleMeasure:
    """One rule's effect on the out-of-fold score.

    alone_gain: score change applied by itself; sequence_gain: applied after the rules
    kept before it; tiles_changed: held-out tiles it changed in sequence; kept: whether
    the submission gets it.
    """

    name: str
    alone_gain: float
    sequence_gain: float
    score_after: float
    tiles_changed: int
    kept: bool

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MeasuredRules:
    """score_before: out-of-fold score of the thresholded predictions; measures: one per
    enabled rule, in order; masks: (T, 101, 101) bool out-of-fold masks after the kept
    rules (tiles without an out-of-fold prediction stay empty)."""

    score_before: float
    measures: list[RuleMeasure]
    masks: np.ndarray

    @property
    def kept(self) -> list[str]:
        return [m.name for m in self.measures if m.kept]

    @property
    def score_after(self) -> float:
        return self.measures[-1].score_after if self.measures else self.score_before


def measure_groups(
    block: Mapping[str, Any] | None, data_dir: str | os.PathLike, cache_dir: str | os.PathLike, train_ids: np.ndarray
) -> tuple[FoldSettings, np.ndarray]:
    """The folds a `measure_folds` block names (None: the random preset) and each train
    tile's group in them, (T,) int64 in the order of `train_ids`."""
    settings = FoldSettings.from_config(block) if block else FoldSettings.preset("random")
    table = folds_for(data_dir, cache_dir, settings, log=lambda line: None)
    group_of = dict(zip(table.id, table.fold))
    return settings, np.array([group_of[tile_id] for tile_id in train_ids.tolist()], dtype=np.int64)


def measure_rules(
    rules: Sequence[Rule],
    *,
    truth: np.ndarray,
    oof: np.ndarray,
    covered: np.ndarray,
    groups: np.ndarray,
    grid: MosaicGrid,
    test: np.ndarray | None = None,
    keep: str = "helpful",
    min_gain: float = 0.0,
    log: Callable[[str], None] = lambda line: None,
) -> MeasuredRules:
    """Measure `rules` on out-of-fold predictions.

    Args:
        truth: (T, 101, 101) bool masks of the train tiles.
        oof: (T, 101, 101) bool thresholded out-of-fold predictions.
        covered: (T,) bool, train tiles that have an out-of-fold prediction.
        groups: (T,) int, the group in which each train tile is held out.
        grid: mosaics over indices 0..T-1 (train tiles) then T.. (test tiles).
        test: (S, 101, 101) bool test predictions, or None (test tiles are then left out).
    """
    count = len(truth)
    held_out = {int(g): covered & (groups == g) for g in np.unique(groups[covered])}
    base = truth if test is None else np.concatenate([truth, test])
    grids = {g: grid.without(_absent(groups == g, covered, len(base), count)) for g in held_out}
    known = {g: np.concatenate([groups != g, np.zeros(len(base) - count, dtype=bool)]) for g in held_out}

    def scores_of(masks: np.ndarray, held: np.ndarray) -> np.ndarray:
        return tile_scores(torch.from_numpy(masks[:count][held]), torch.from_numpy(truth[held])).numpy()

    def run(rule: Rule, states: dict[int, np.ndarray]) -> tuple[np.ndarray, dict[int, np.ndarray], int]:
        """Per-tile scores after `rule` from `states`, the new states, held-out tiles changed."""
        scores, after, changed = np.zeros(count), {}, 0
        for g, held in held_out.items():
            masks = _unpack(states[g], len(base))
            start = masks[:count][held].copy()
            apply_rule(rule, TileMasks(masks, known[g], grids[g]))
            changed += int((masks[:count][held] != start).reshape(int(held.sum()), -1).any(axis=1).sum())
            scores[held] = scores_of(masks, held)
            after[g] = _pack(masks)
        return scores, after, changed

    initial, current_scores = {}, np.zeros(count)
    for g, held in held_out.items():
        masks = _start(base, oof, held)
        current_scores[held] = scores_of(masks, held)
        initial[g] = _pack(masks)
    before = float(current_scores[covered].mean()) if covered.any() else float("nan")
    current, current_score, measures = initial, before, []
    for rule in rules:
        scores, trial, changed = run(rule, current)
        # Until a rule is kept, "in sequence" starts where "alone" does.
        alone = scores if current is initial else run(rule, initial)[0]
        score = float(scores[covered].mean())
        gain = score - current_score
        kept = keep == "all" or gain > min_gain
        measure = RuleMeasure(rule.name, float(alone[covered].mean()) - before, gain, score if kept else current_score, changed, kept)
        measures.append(measure)
        log(
            f"  {rule.name}: {gain:+.4f} in sequence, {measure.alone_gain:+.4f} alone, "
            f"{changed} held-out tiles changed{'' if kept else ' (not kept)'}"
        )
        if kept:
            current, current_scores, current_score = trial, scores, score
    final = np.zeros_like(oof)
    for g, held in held_out.items():
        final[held] = _unpack(current[g], len(base))[:count][held]
    return MeasuredRules(before, measures, final)


def _start(base: np.ndarray, oof: np.ndarray, held: np.ndarray) -> np.ndarray:
    masks = base.copy()
    masks[: len(oof)][held] = oof[held]
    return masks


def _absent(in_group: np.ndarray, covered: np.ndarray, total: int, count: int) -> np.ndarray:
    """Tiles with neither truth nor prediction when `in_group` is held out."""
    absent = np.zeros(total, dtype=bool)
    absent[:count] = in_group & ~covered
    return absent


def _pack(masks: np.ndarray) -> np.ndarray:
    """(N, 101, 101) bool → (N, 1276) uint8: one bit a pixel, so that one state per group
    of the whole universe (train + 18,500 test tiles) stays small."""
    return np.packbits(masks.reshape(len(masks), -1), axis=1)


def _unpack(packed: np.ndarray, count: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=PIXELS).reshape(count, TILE_SIZE, TILE_SIZE).view(bool)
