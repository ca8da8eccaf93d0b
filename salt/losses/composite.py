"""A weighted sum of named loss terms, with the weights from config."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from salt.errors import SaltError
from salt.losses.dice import soft_iou_loss
from salt.losses.lovasz import lovasz_hinge
from salt.losses.pixel_bce import empty_tile_bce, pixel_bce

# name -> (loss function, does it read the empty-tile logit rather than the mask logits)
TERMS: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], bool]] = {
    "lovasz": (lovasz_hinge, False),
    "lovasz_relu": (lambda logits, truth: lovasz_hinge(logits, truth, elu_hinge=False), False),
    "bce": (pixel_bce, False),
    "soft_iou": (soft_iou_loss, False),
    "empty_bce": (empty_tile_bce, True),
}


class CompositeLoss(nn.Module):
    """sum_k weight_k · term_k; terms named as in `TERMS`, weights zero or more.

    forward(mask_logits [B, 1, H, W], empty_logit [B] or None, truth [B, 1, H, W])
    -> (total scalar, {name: scalar} of each weighted term's unweighted value).
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        unknown = sorted(set(weights) - set(TERMS))
        if unknown:
            raise SaltError(f"loss: unknown term(s) {', '.join(unknown)}; choose from {', '.join(TERMS)}")
        self.weights = {name: float(w) for name, w in weights.items() if float(w) != 0.0}
        if not self.weights:
            raise SaltError("loss: every weight is zero")

    @property
    def needs_empty_logit(self) -> bool:
        return any(TERMS[name][1] for name in self.weights)

    def forward(self, mask_logits: Tensor, empty_logit: Tensor | None, truth: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        parts = {}
        total = torch.zeros((), device=mask_logits.device)
        for name, weight in self.weights.items():
            function, on_empty_logit = TERMS[name]
            if on_empty_logit and empty_logit is None:
                raise SaltError(f"loss term {name!r} needs the empty-tile head; enable model.empty_head or set its weight to 0")
            parts[name] = function(empty_logit if on_empty_logit else mask_logits, truth)
            total = total + weight * parts[name]
        return total, parts
