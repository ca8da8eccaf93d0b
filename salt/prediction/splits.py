"""Out-of-fold and test predictions as one record each, made by the same code: the
thresholds they are binarised with, and the masks before and after post-processing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from salt.errors import SaltError
from salt.masks import tile_masks
from salt.metric import score_report
from salt.prediction.ensemble import EnsembleMean
from salt.prediction.thresholds import ThresholdSearch, search_thresholds, threshold_grid


@dataclass
class SplitMasks:
    """One split's masks, out-of-fold and test alike: thresholded (`before`) and
    post-processed (`after`), both (N, 101, 101) bool; `covered` (N,) bool marks the tiles
    that were predicted; the counts are of covered tiles the binarisation rule emptied."""

    name: str
    ids: np.ndarray
    before: np.ndarray
    covered: np.ndarray
    emptied_by_head: int
    emptied_all_salt: int
    after: np.ndarray | None = None


@dataclass(frozen=True)
class SplitMeans:
    """A split's ensemble means, read once: (N, 101, 101) P(salt) per pixel, (N,) P(tile holds
    salt) (NaN without a head) and (N,) bool `covered` (predicted by at least one run)."""

    probability: np.ndarray
    salt: np.ndarray
    covered: np.ndarray

    @classmethod
    def of(cls, mean: EnsembleMean) -> SplitMeans:
        probability, salt = mean.means()
        return cls(probability, salt, mean.covered)


@dataclass(frozen=True)
class Thresholds:
    """The pair the masks are made with, and where it came from ("config" or the search)."""

    mask: float
    empty: float
    source: str

    def as_dict(self) -> dict:
        return {"mask": self.mask, "empty": self.empty, "source": self.source}


def choose_thresholds(cfg: DictConfig, oof: SplitMeans | None, truth: np.ndarray) -> tuple[Thresholds, ThresholdSearch | None]:
    """The configured pair, the search over the out-of-fold tiles (when there are any), and
    the searched pair instead of the configured one with ``oof.apply_best``."""
    configured = Thresholds(float(cfg.thresholds.mask), float(cfg.thresholds.empty), "config")
    if oof is None:
        return configured, None
    covered = oof.covered
    if not covered.any():
        raise SaltError("no train tile lies in the validation fold of any run: nothing out-of-fold (set oof.enabled=false)")
    search = search_thresholds(
        oof.probability[covered], oof.salt[covered], truth[covered], threshold_grid(**cfg.oof.search.mask), threshold_grid(**cfg.oof.search.empty)
    )
    if bool(cfg.oof.apply_best):
        return Thresholds(search.best[0], search.best[1], "out-of-fold search"), search
    return configured, search


def binarise(name: str, ids: np.ndarray, means: SplitMeans, thresholds: Thresholds) -> SplitMasks:
    """A split's means → its masks by the one rule (`salt.masks.tile_masks`); tiles no run
    predicted stay empty and uncovered."""
    covered = means.covered
    made = tile_masks(means.probability, means.salt, mask_threshold=thresholds.mask, empty_threshold=thresholds.empty)
    masks = made.masks
    masks[~covered] = False
    return SplitMasks(
        name, ids, masks, covered, int((made.emptied_by_head & covered).sum()), int((made.emptied_all_salt & covered).sum())
    )


def split_score(split: SplitMasks, truth: np.ndarray, which: str) -> dict:
    """`salt.metric.score_report` of the covered tiles' masks, "before" or "after" post-processing."""
    masks = split.before if which == "before" else split.after
    return score_report(masks[split.covered], truth[split.covered])


def empty_baseline(split: SplitMasks, truth: np.ndarray) -> float:
    """The score of the covered tiles, every one predicted empty."""
    return score_report(np.zeros_like(truth[split.covered]), truth[split.covered])["score"]
