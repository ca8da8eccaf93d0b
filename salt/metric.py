"""The competition metric, written once: a vectorised functional core and a torchmetrics Metric.

Per tile: empty truth and empty prediction score 1; exactly one of them empty scores 0;
otherwise the mean over thresholds t = 0.50, 0.55, ..., 0.95 of [IoU > t]. The score of
a set of tiles is the mean over tiles.
"""

from __future__ import annotations

import numpy as np
import torch

# Thresholds as k / 20, k = 10..19: comparing 20·intersection > k·union in integers keeps
# the strict inequality exact (IoU = 0.55 must not pass t = 0.55).
_THRESHOLD_NUMERATORS = torch.arange(10, 20)
_THRESHOLD_DENOMINATOR = 20
THRESHOLDS = tuple(k / _THRESHOLD_DENOMINATOR for k in range(10, 20))


def tile_scores(pred: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Score each tile: (B, H, W) bool predicted and true masks -> (B,) float32 in [0, 1].

    Works on any device; inputs that are not bool are read as `!= 0`.
    """
    pred, truth = _as_bool_tensor(pred), _as_bool_tensor(truth)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(f"expected two (B, H, W) masks of one shape, got {tuple(pred.shape)} and {tuple(truth.shape)}")
    intersection = (pred & truth).flatten(1).sum(1)
    union = (pred | truth).flatten(1).sum(1)
    k = _THRESHOLD_NUMERATORS.to(pred.device)
    hits = _THRESHOLD_DENOMINATOR * intersection[:, None] > k[None, :] * union[:, None]
    scores = hits.float().mean(1)
    # Both empty: union is 0, no threshold is passed, but the tile is a perfect match.
    return torch.where(union == 0, torch.ones_like(scores), scores)


def coverage_classes(truth: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(B, H, W) true masks -> (B,) int64 coverage class: 0 empty, else ceil(10 · coverage) in 1..10."""
    truth = _as_bool_tensor(truth)
    coverage = truth.flatten(1).float().mean(1)
    return torch.ceil(coverage * 10).long().clamp(0, 10)


def score_report(pred: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray) -> dict:
    """The score overall, on empty and on salt tiles, and per coverage class.

    Returns {"score", "tiles", "empty": {"score", "tiles"}, "salt": {...},
    "coverage": {class: {"score", "tiles"}}} with classes as in `coverage_classes`.
    """
    scores = tile_scores(pred, truth).cpu()
    classes = coverage_classes(truth).cpu()

    def summary(selection: torch.Tensor) -> dict:
        n = int(selection.sum())
        return {"score": float(scores[selection].mean()) if n else float("nan"), "tiles": n}

    return {
        "score": float(scores.mean()),
        "tiles": len(scores),
        "empty": summary(classes == 0),
        "salt": summary(classes > 0),
        "coverage": {int(c): summary(classes == c) for c in range(1, 11)},
    }


def _as_bool_tensor(masks: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(np.ascontiguousarray(masks))
    return masks if masks.dtype == torch.bool else masks != 0


def _define_competition_score():
    import torchmetrics

    class CompetitionScore(torchmetrics.Metric):
        """Mean competition score over every tile seen since the last reset.

        update(pred, truth): (B, H, W) masks; `pred` may be probabilities, binarised at
        `threshold`. Sums are synchronised across processes, so the score is the mean over
        the whole validation set, not a mean of per-batch means.
        """

        is_differentiable = False
        higher_is_better = True
        full_state_update = False

        def __init__(self, threshold: float = 0.5, **kwargs) -> None:
            super().__init__(**kwargs)
            self.threshold = threshold
            self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("tiles", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

        def update(self, pred: torch.Tensor, truth: torch.Tensor) -> None:
            if pred.is_floating_point():
                pred = pred > self.threshold
            scores = tile_scores(pred, truth)
            self.total += scores.sum(dtype=torch.float64)
            self.tiles += scores.numel()

        def compute(self) -> torch.Tensor:
            return (self.total / self.tiles.clamp(min=1)).float()

    # Pickle (ddp_spawn, multiprocessing) finds the class as salt.metric.CompetitionScore.
    CompetitionScore.__qualname__ = "CompetitionScore"
    return CompetitionScore


def __getattr__(name: str):
    # torchmetrics takes seconds to import; command-line tools that only score files
    # (salt.score) should not pay for it, so the Metric class is built on first use.
    if name == "CompetitionScore":
        globals()[name] = _define_competition_score()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
