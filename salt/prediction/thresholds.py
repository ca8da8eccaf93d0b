"""The search for the best pair of thresholds on out-of-fold tiles (masks by `salt.masks.tile_masks`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from salt.masks import tile_masks
from salt.metric import tile_scores

CHUNK = 1024  # tiles per scoring step: bounds the temporary boolean arrays


@dataclass(frozen=True)
class ThresholdSearch:
    """Mean competition score for every (mask, empty) threshold pair.

    scores: (len(mask_grid), len(empty_grid)) float; best_* the pair with the highest
    score (the first one on ties, in grid order).
    """

    mask_grid: np.ndarray
    empty_grid: np.ndarray
    scores: np.ndarray

    @property
    def best(self) -> tuple[float, float, float]:
        """(mask threshold, empty threshold, score) of the best pair."""
        i, j = np.unravel_index(int(np.argmax(self.scores)), self.scores.shape)
        return float(self.mask_grid[i]), float(self.empty_grid[j]), float(self.scores[i, j])

    def as_dict(self) -> dict:
        mask, empty, score = self.best
        return {
            "mask_grid": [round(float(v), 4) for v in self.mask_grid],
            "empty_grid": [round(float(v), 4) for v in self.empty_grid],
            "scores": [[round(float(v), 5) for v in row] for row in self.scores],
            "best": {"mask": mask, "empty": empty, "score": score},
        }


def search_thresholds(
    mask_probability: np.ndarray,
    salt_probability: np.ndarray,
    truth: np.ndarray,
    mask_grid: Sequence[float],
    empty_grid: Sequence[float],
) -> ThresholdSearch:
    """Score every pair of thresholds on tiles with known truth.

    One pass per mask threshold: each tile's score when kept and when emptied are
    computed once, and every empty threshold only chooses between the two.

    Args:
        mask_probability: (N, 101, 101) float, salt_probability (N,) float (NaN: no head,
            never emptied), truth (N, 101, 101) bool.
    """
    mask_grid = np.asarray(mask_grid, dtype=np.float64)
    empty_grid = np.asarray(empty_grid, dtype=np.float64)
    truth_empty = ~truth.reshape(len(truth), -1).any(axis=1)
    emptied_score = truth_empty.astype(np.float64)  # an empty prediction scores 1 on empty truth, else 0
    salt = np.nan_to_num(salt_probability, nan=np.inf)
    # keep[j, n]: tile n survives empty threshold j.
    keep = salt[None, :] >= empty_grid[:, None]
    scores = np.zeros((len(mask_grid), len(empty_grid)))
    for i, threshold in enumerate(mask_grid):
        kept_score = np.empty(len(truth))
        for start in range(0, len(truth), CHUNK):
            part = slice(start, start + CHUNK)
            masks = tile_masks(mask_probability[part], None, mask_threshold=threshold, empty_threshold=0.0).masks
            kept_score[part] = tile_scores(torch.from_numpy(masks), torch.from_numpy(np.ascontiguousarray(truth[part]))).numpy()
        scores[i] = np.where(keep, kept_score[None, :], emptied_score[None, :]).mean(axis=1)
    return ThresholdSearch(mask_grid, empty_grid, scores)


def threshold_grid(start: float, stop: float, step: float) -> np.ndarray:
    """Thresholds from `start` to `stop` inclusive in steps of `step`, rounded to 4 decimals."""
    count = int(round((stop - start) / step)) + 1
    return np.round(start + step * np.arange(count), 4)
