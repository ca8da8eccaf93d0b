"""Binary cross-entropy on mask pixels and on the empty-tile logit."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def pixel_bce(logits: Tensor, truth: Tensor) -> Tensor:
    """Mean per-pixel BCE. logits and truth: (B, ...) of one shape. Returns a scalar."""
    return F.binary_cross_entropy_with_logits(logits.float(), truth.float())


def empty_tile_bce(empty_logit: Tensor, truth: Tensor) -> Tensor:
    """BCE of the "tile contains salt" logit (B,) against truth masks (B, ...). Returns a scalar."""
    has_salt = truth.flatten(1).any(dim=1).float()
    return F.binary_cross_entropy_with_logits(empty_logit.float(), has_salt)
