"""Lovász hinge: a convex surrogate of the Jaccard loss (Berman et al., CVPR 2018).

Computed per tile and averaged, because the competition metric is per tile: a batch-wide
Lovász would let large salt bodies drown small ones. The hinge is `elu(x) + 1` instead of
`relu(x)` by default, as the original solution used: smooth, and it keeps a gradient on
pixels already on the right side of the margin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def lovasz_grad(truth_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors.

    truth_sorted: (B, P) float 0/1 labels, each row in order of decreasing error.
    Returns (B, P) float.
    """
    positives = truth_sorted.sum(dim=1, keepdim=True)
    intersection = positives - truth_sorted.cumsum(dim=1)
    union = positives + (1 - truth_sorted).cumsum(dim=1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)


def lovasz_hinge(logits: Tensor, truth: Tensor, *, elu_hinge: bool = True) -> Tensor:
    """Mean over tiles of the per-tile Lovász hinge.

    logits: (B, ...) raw scores, positive = salt; truth: same shape, 0/1 or bool.
    Returns a scalar. A tile with no salt is penalised by its most confident false
    positive, so empty tiles keep a gradient.
    """
    logits = logits.flatten(1).float()
    truth = truth.flatten(1).float()
    signs = 2 * truth - 1
    errors = 1 - logits * signs
    errors_sorted, order = torch.sort(errors, dim=1, descending=True)
    grad = lovasz_grad(torch.gather(truth, 1, order))
    hinge = F.elu(errors_sorted) + 1 if elu_hinge else F.relu(errors_sorted)
    return (hinge * grad).sum(dim=1).mean()
