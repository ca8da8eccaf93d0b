"""Input channels built from a (cropped, augmented) tile: the plain image and the extras
the original team tried. Each is (H, W) float32, computed per sample (`stack_channels`) or
for a whole batch on the training device (`stack_channel_batch`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from salt.errors import SaltError

# Depths in the competition run from 50 to 959; one scale for all tiles keeps them comparable.
DEPTH_SCALE = 1000.0


def _ramp(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.linspace(0, 1, image.shape[0], dtype=np.float32)[:, None], image.shape[1], axis=1)


def _cumsum(image: np.ndarray) -> np.ndarray:
    # Cumulative sum down the columns of the zero-mean image: integrates the reflectivity
    # into something closer to impedance, in which salt stands out as a plateau.
    integrated = np.cumsum(image - image.mean(), axis=0)
    scale = np.abs(integrated).max()
    return integrated / scale if scale > 0 else integrated


CHANNELS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "image": lambda image, depth: image,
    "depth_ramp": lambda image, depth: _ramp(image),  # 0 at the top row, 1 at the bottom
    "image_x_depth": lambda image, depth: image * _ramp(image),
    "depth": lambda image, depth: np.full_like(image, depth / DEPTH_SCALE),  # the tile's z
    "cumsum": lambda image, depth: _cumsum(image),
    "coord_x": lambda image, depth: _ramp(image.T).T,  # 0 at the left column, 1 at the right
}


def check_channels(names: Sequence[str]) -> list[str]:
    """The channel names, or a `SaltError` naming an unknown one and the choices."""
    names = list(names)
    if not names:
        raise SaltError("data.channels: empty; list at least 'image'")
    unknown = [name for name in names if name not in CHANNELS]
    if unknown:
        raise SaltError(f"data.channels: unknown channel {unknown[0]!r}; choose from {', '.join(CHANNELS)}")
    return names


def stack_channels(image: np.ndarray, depth: float, names: Sequence[str]) -> np.ndarray:
    """(H, W) float32 image in [0, 1] and the tile depth z -> (C, H, W) float32."""
    return np.stack([CHANNELS[name](image, depth) for name in names]).astype(np.float32, copy=False)


# --- the same channels for a batch of tensors, on any device --------------------------


def _ramp_batch(images: Tensor) -> Tensor:
    rows = torch.linspace(0, 1, images.shape[-2], dtype=images.dtype, device=images.device)
    return rows[:, None].expand(images.shape[-2:]).expand_as(images)


def _cumsum_batch(images: Tensor) -> Tensor:
    integrated = torch.cumsum(images - images.mean(dim=(-2, -1), keepdim=True), dim=-2)
    scale = integrated.abs().amax(dim=(-2, -1), keepdim=True)
    return integrated / torch.where(scale > 0, scale, torch.ones_like(scale))


BATCH_CHANNELS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "image": lambda images, depths: images,
    "depth_ramp": lambda images, depths: _ramp_batch(images),
    "image_x_depth": lambda images, depths: images * _ramp_batch(images),
    "depth": lambda images, depths: (depths.to(images.dtype) / DEPTH_SCALE)[:, None, None].expand_as(images),
    "cumsum": lambda images, depths: _cumsum_batch(images),
    "coord_x": lambda images, depths: _ramp_batch(images.transpose(-2, -1)).transpose(-2, -1),
}


def stack_channel_batch(images: Tensor, depths: Tensor, names: Sequence[str], out: Tensor | None = None) -> Tensor:
    """(B, H, W) float images in [0, 1] and (B,) depths -> (B, C, H, W), on their device.

    Equal to `stack_channels` tile by tile (tests hold them together); used where tiles are
    augmented as whole batches on the training device. Every channel is written straight
    into `out` (or a new tensor) with no temporary, and when `images` already is the image
    channel of `out` it is left where it is: on a CPU this path is bound by memory traffic.
    """
    stacked = images.new_empty((images.shape[0], len(names), *images.shape[1:])) if out is None else out
    for channel, name in enumerate(names):
        target = stacked[:, channel]
        if name == "image_x_depth":
            torch.mul(images, _ramp_batch(images), out=target)
        elif not (name == "image" and _same_memory(images, target)):
            target.copy_(BATCH_CHANNELS[name](images, depths))
    return stacked


def _same_memory(a: Tensor, b: Tensor) -> bool:
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
