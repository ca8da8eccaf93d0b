"""From probabilities to tile masks: the one rule shared by validation (the val/score that
picks checkpoints), the threshold search, the out-of-fold report and the submission.

1. a pixel is salt where P(salt) > `mask_threshold`;
2. a tile whose empty-tile head gives P(tile holds salt) < `empty_threshold` is emptied
   (a network without the head, or NaN: never);
3. a tile left salt everywhere is emptied: no training tile is all salt (tiles inside a
   salt body were labelled empty), so such a prediction scores better as empty.

The functions take numpy arrays or torch tensors alike (validation runs on the training
device, prediction on arrays) and return the same kind.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Array = Any  # numpy.ndarray or torch.Tensor: only operators both share are used


class Binarised(NamedTuple):
    """masks (N, H, W) bool; emptied_by_head (N,) bool: tiles with salt pixels emptied by the
    head; emptied_all_salt (N,) bool: tiles emptied because every pixel was salt."""

    masks: Array
    emptied_by_head: Array
    emptied_all_salt: Array


def all_salt(masks: Array) -> Array:
    """(N,) bool: the tiles of (N, H, W) bool `masks` that are salt at every pixel."""
    return masks.reshape(len(masks), -1).all(1)


def tile_masks(mask_probability: Array, salt_probability: Array | None, *, mask_threshold: float, empty_threshold: float) -> Binarised:
    """Binarise (N, H, W) P(salt) per pixel and (N,) P(tile holds salt) (or None) by the rule above."""
    masks = mask_probability > mask_threshold
    has_salt = masks.reshape(len(masks), -1).any(1)
    if salt_probability is None:  # no empty-tile head: it empties nothing
        low = has_salt & False
    else:
        low = salt_probability < empty_threshold  # NaN < t is false: never emptied
    masks = masks & ~low[:, None, None]
    full = all_salt(masks)
    return Binarised(masks & ~full[:, None, None], low & has_salt, full)
