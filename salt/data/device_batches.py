"""Training batches assembled and augmented on the training device.

The padded tiles, masks and depths of a fold live as one tensor each on the device the
network trains on. A batch travels from the loader as tile indices plus the few numbers
that say how to augment each tile (crop origin, flip, contrast factor, brightness shift),
drawn on the CPU from a generator seeded by (seed, epoch); the pixels are then cut, flipped,
scaled and turned into input channels there with a handful of batched tensor ops. No
loader process touches a pixel, so the GPU never waits on CPU augmentation, and on a CPU
the cores go to the network instead of to loader workers.

The distributions are those of `salt.training.datamodule.training_transform` (albumentations
`RandomCrop`, `HorizontalFlip`, `RandomBrightnessContrast` on float tiles): crop origins
uniform over every position inside the padded tile, a flip with probability ``hflip``, and
with probability ``brightness_contrast_p`` the linear map ``x * alpha + beta`` with
``alpha = 1 + U(-contrast, contrast)`` and ``beta = U(-brightness, brightness)``, clipped
to [0, 1]. The mask follows every geometric step exactly.

Epochs keep their meaning: each visits every training tile once, in an order and with
augmentations that depend only on the seed and the epoch number, so a run resumed from an
epoch's checkpoint continues exactly as it would have without the interruption.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import IterableDataset

from salt.data.channels import stack_channel_batch
from salt.errors import SaltError
from salt.geometry import TileGeometry

def augment_settings(augment: Mapping[str, Any]) -> dict[str, float]:
    """The `data.augment` block as floats, each checked to be a probability or a limit."""
    known = {"hflip": 0.5, "brightness": 0.2, "contrast": 0.2, "brightness_contrast_p": 0.5}
    unknown = sorted(set(augment) - set(known))
    if unknown:
        raise SaltError(f"data.augment.{unknown[0]}: unknown key; the device path knows {', '.join(known)}")
    settings = {key: float(augment.get(key, default)) for key, default in known.items()}
    for key in ("hflip", "brightness_contrast_p"):
        if not 0.0 <= settings[key] <= 1.0:
            raise SaltError(f"data.augment.{key}={settings[key]}: a probability, must lie in [0, 1]")
    for key in ("brightness", "contrast"):
        if not 0.0 <= settings[key] < 1.0:
            raise SaltError(f"data.augment.{key}={settings[key]}: a limit, must lie in [0, 1)")
    return settings


def draw_augmentations(count: int, geometry: TileGeometry, augment: Mapping[str, float], generator: torch.Generator) -> dict[str, Tensor]:
    """Per-tile augmentation parameters for `count` tiles, drawn on the CPU from `generator`.

    row, col: (count,) int64 crop origins; flip: (count,) bool; alpha, beta: (count,)
    float32 contrast factor and brightness shift (1 and 0 where the tile is left alone).
    """
    positions = geometry.padded_size - geometry.crop_size + 1
    row = torch.randint(positions, (count,), generator=generator)
    col = torch.randint(positions, (count,), generator=generator)
    flip = torch.rand(count, generator=generator) < augment["hflip"]
    adjust = torch.rand(count, generator=generator) < augment["brightness_contrast_p"]
    contrast = (torch.rand(count, generator=generator) * 2 - 1) * augment["contrast"]
    brightness = (torch.rand(count, generator=generator) * 2 - 1) * augment["brightness"]
    alpha = torch.where(adjust, 1 + contrast, torch.ones(count))
    beta = torch.where(adjust, brightness, torch.zeros(count))
    return {"row": row, "col": col, "flip": flip, "alpha": alpha, "beta": beta}


def mirrored(tiles: Tensor) -> Tensor:
    """(N, S, S) -> (2N, S, S): the tiles, then each of them mirrored left-right."""
    return torch.cat([tiles, tiles.flip(-1)])


def crop_offsets(index: Tensor, row: Tensor, col: Tensor, flip: Tensor, count: int, padded: int, size: int) -> Tensor:
    """Where each crop starts in the flattened `mirrored` store of `count` tiles of side `padded`.

    Tile ``index[b]`` cut at (row[b], col[b]) and mirrored where ``flip[b]`` is the crop of
    the mirrored tile ``index[b] + count`` at column ``padded - size - col[b]``: flipping
    costs nothing once the batch is cut.
    """
    tile = torch.where(flip, index + count, index)
    col = torch.where(flip, padded - size - col, col)
    return (tile * padded + row) * padded + col


def cut_crops(store: Tensor, offsets: Tensor, size: int) -> Tensor:
    """(M, S, S) store, (B,) flat offsets -> (B, size, size) crops (a copy).

    The size × size windows that start at each element of the store are the rows of one
    strided view (window rows S apart, columns 1 apart; no copy), so picking B crops is one
    `index_select`: a single pass over the batch.
    """
    flat = store.contiguous().view(-1)
    padded = store.shape[-1]
    starts = flat.numel() - (size - 1) * (padded + 1)
    windows = flat.as_strided((starts, size, size), (1, padded, 1))
    return torch.index_select(windows, 0, offsets)


class DeviceTiles:
    """One fold's prepared tiles as tensors, moved to the training device on first use.

    Args:
        images: (N, S, S) float32 padded tiles in [0, 1].
        masks: (N, S, S) bool, or None for unlabelled tiles (all-zero masks).
        depths: (N,) tile depths.
        geometry: padded and crop sizes.
        channels: input channel names (`salt.data.channels`).
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray | None, depths: np.ndarray, geometry: TileGeometry, channels: Sequence[str]) -> None:
        # Each tile is kept beside its mirror image (`mirrored`) and masks as float32, so that
        # cutting a batch is one pass over it with the flips and the masks' conversion already
        # done; the price is memory: about 1 GB for a fold's 2,800 training tiles.
        images = torch.from_numpy(np.asarray(images, dtype=np.float32))
        self.count = len(images)
        self.images = mirrored(images)
        self.masks = None if masks is None else mirrored(torch.from_numpy(np.asarray(masks)).to(torch.float32))
        self.depths = torch.from_numpy(np.array(depths, dtype=np.float32))
        self.geometry = geometry
        self.channels = list(channels)

    def to(self, device: torch.device) -> DeviceTiles:
        """Keep the tensors on `device` (a no-op once they are there)."""
        if self.images.device != device:
            self.images = self.images.to(device)
            self.depths = self.depths.to(device)
            if self.masks is not None:
                self.masks = self.masks.to(device)
        return self

    def batch(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Index batch (+ augmentation parameters) -> {"image" [B, C, s, s], "mask" [B, 1, s, s], "index"}.

        Without augmentation parameters the centred crop is taken (validation).
        """
        index = batch["index"]
        self.to(index.device)
        size = self.geometry.crop_size
        if "row" in batch:
            row, col, flip = batch["row"], batch["col"], batch["flip"]
        else:
            start = torch.full_like(index, self.geometry.center_crop_start)
            row, col, flip = start, start, torch.zeros_like(index, dtype=torch.bool)
        offsets = crop_offsets(index, row, col, flip, self.count, self.geometry.padded_size, size)
        crops = cut_crops(self.images, offsets, size)
        stacked = crops.new_empty((len(index), len(self.channels), size, size))
        # The image channel is written once, by the brightness/contrast map when there is one:
        # every pass over a batch-sized tensor costs memory bandwidth, which bounds this path
        # on a CPU.
        images = stacked[:, self.channels.index("image")] if "image" in self.channels else torch.empty_like(crops)
        if "alpha" in batch:
            torch.mul(crops, batch["alpha"][:, None, None], out=images)  # 2x faster than addcmul here
            images.add_(batch["beta"][:, None, None]).clamp_(0.0, 1.0)
        else:
            images.copy_(crops)
        masks = torch.zeros_like(crops) if self.masks is None else cut_crops(self.masks, offsets, size)
        return {
            "image": stack_channel_batch(images, self.depths[index], self.channels, out=stacked),
            "mask": masks[:, None],
            "index": index,
        }


def epoch_generator(seed: int, epoch: int, *more: int) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch) and any further keys given (a
    batch, a rank): a resumed run draws what the uninterrupted run drew."""
    mixed = np.random.SeedSequence([int(seed) % 2**63, int(epoch), *map(int, more)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed))


class IndexBatches(IterableDataset):
    """Batches of tile indices for one epoch, with their augmentation parameters when training.

    Yields {"index": (B,) int64[, "row", "col", "flip", "alpha", "beta"]}. With `shuffle`
    the order is a permutation drawn from (seed, epoch); `epoch` is read when an epoch's
    iteration starts (the trainer's current epoch), so a resumed run draws what the
    uninterrupted one drew. Under data parallelism each rank takes every `world`-th tile of
    the same permutation.
    """

    def __init__(
        self,
        indices: np.ndarray,
        batch_size: int,
        *,
        geometry: TileGeometry,
        augment: Mapping[str, float] | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.batch_size = int(batch_size)
        self.geometry = geometry
        self.augment = None if augment is None else dict(augment)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.epoch = epoch
        self.rank, self.world = int(rank), int(world)

    def _per_rank(self) -> int:
        return len(self.indices) // self.world if self.world > 1 else len(self.indices)

    def __len__(self) -> int:
        count = self._per_rank()
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        generator = epoch_generator(self.seed, self.epoch())
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(len(order), generator=generator)]
        if self.world > 1:
            order = order[self.rank :: self.world][: self._per_rank()]
        # Every rank draws the parameters of every tile, so all ranks stay in step.
        params = None
        if self.augment is not None:
            params = draw_augmentations(len(self.indices), self.geometry, self.augment, generator)
            params = {key: value[self.rank :: self.world][: len(order)] for key, value in params.items()}
        for batch in range(len(self)):
            span = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
            item = {"index": order[span]}
            if params is not None:
                item.update({key: value[span] for key, value in params.items()})
            yield item
