"""Soft IoU (Jaccard) loss that stays informative on empty tiles."""

from __future__ import annotations

import torch
from torch import Tensor


def soft_iou_loss(logits: Tensor, truth: Tensor, *, smooth: float = 1.0) -> Tensor:
    """Mean over tiles of 1 - (I + smooth) / (U + smooth) with soft I and U.

    logits, truth: (B, ...) of one shape. Returns a scalar. Without the smoothing term a
    tile with no salt would score 0/0; with it, an empty tile costs ~ sum(p) / (sum(p) + 1),
    so false positives on empty tiles (a third of the data) are still penalised rather
    than ignored.
    """
    prob = torch.sigmoid(logits.flatten(1).float())
    truth = truth.flatten(1).float()
    intersection = (prob * truth).sum(dim=1)
    union = prob.sum(dim=1) + truth.sum(dim=1) - intersection
    return (1 - (intersection + smooth) / (union + smooth)).mean()
