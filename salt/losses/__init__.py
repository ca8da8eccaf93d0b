"""Losses for salt segmentation: one file per loss over a small functional core.

Mask losses take `(mask_logits [B, 1, H, W] or [B, H, W], truth of the same shape)`;
the empty-tile loss takes `(empty_logit [B], truth)` and derives "tile contains salt"
from the truth. `CompositeLoss` sums weighted terms by name, as the config gives them.
"""

from salt.losses.composite import TERMS, CompositeLoss
from salt.losses.dice import soft_iou_loss
from salt.losses.lovasz import lovasz_hinge
from salt.losses.pixel_bce import empty_tile_bce, pixel_bce

__all__ = ["TERMS", "CompositeLoss", "empty_tile_bce", "lovasz_hinge", "pixel_bce", "soft_iou_loss"]
