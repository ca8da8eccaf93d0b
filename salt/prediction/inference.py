"""One network over many tiles: batches of 101×101 salt probabilities, with flip TTA.

Inputs are made exactly as in validation (`salt.training.datamodule.TileDataset` with the
centred crop), or from the whole padded tile: ``crop="full"`` pads the tile to the next
multiple of the network's stride (148 → 160) with the run's padding mode and feeds all of
it. Either way `TileGeometry.uncrop` cuts the 101×101 tile back out of the output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import albumentations as A
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from salt.training.datamodule import TileDataset, validation_transform
from salt.errors import SaltError
from salt.geometry import TileGeometry
from salt.precision import inference_precision
from salt.models import SIZE_MULTIPLE
from salt.data.prepared import PaddingSettings, PreparedTiles
from salt.settings import defaults_block, store_schema

CROPS = ("center", "full")
PRECISIONS = ("32", "bf16", "auto")


@dataclass(frozen=True)
class InferenceSettings:
    """How networks are run: the ``tta``, ``crop``, ``batch_size``, ``num_workers``,
    ``device`` and ``precision`` keys of conf/predict.yaml.

    hflip: also predict the left-right mirrored tile and average the two probabilities.
    crop: "center" (the training crop, e.g. 128 of 148) or "full" (the tile padded to the
        next multiple of the network's stride, e.g. 160, all of it).
    device: "auto" (CUDA when present), "cpu", "cuda", "cuda:1", ...
    precision: "32", "bf16" autocast (faster on GPUs and on CPUs with AMX or AVX-512 BF16;
        far slower on CPUs without them), or "auto": bf16 where the device computes it natively.
    channels_last: NHWC memory layout for the network and its inputs (oneDNN's and
        cuDNN's preferred layout; 1.3–1.5× on a CPU here, equal up to float rounding).
    """

    hflip: bool = True
    crop: str = "center"
    batch_size: int = 32
    num_workers: int = 0
    device: str = "auto"
    precision: str = "32"
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise SaltError(f"crop={self.crop!r}: must be one of {', '.join(CROPS)}")
        if str(self.precision) not in PRECISIONS:
            raise SaltError(f"precision={self.precision!r}: must be one of {', '.join(PRECISIONS)}")
        if int(self.batch_size) < 1:
            raise SaltError(f"batch_size={self.batch_size}: must be at least 1")

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def resolved_precision(self) -> str:
        """"32" or "bf16": `precision` with `auto` resolved for the device."""
        return inference_precision(self.precision, self.torch_device)

    @property
    def bf16(self) -> bool:
        """Whether the networks run under bf16 autocast."""
        return self.resolved_precision == "bf16"


# Where conf/predict.yaml and section.yaml keep the fields not named by their own key.
INFERENCE_KEYS = {"hflip": "tta.hflip"}
store_schema("inference", defaults_block(InferenceSettings, INFERENCE_KEYS))  # predict.yaml, section.yaml


def input_padding(padding: PaddingSettings, crop: str, multiple: int = SIZE_MULTIPLE) -> PaddingSettings:
    """The padding a run's tiles get at prediction time.

    "center": the run's own (padded side S, centred crop C). "full": the run's mode, padded
    to the smallest multiple of `multiple` that holds the training pad, fed whole.
    """
    if crop == "center":
        return padding
    size = math.ceil(padding.size / multiple) * multiple
    return PaddingSettings(mode=padding.mode, size=size, crop_size=size, mask_threshold=padding.mask_threshold)


@dataclass(frozen=True)
class TileBatch:
    """Predictions for a batch of tiles.

    indices:            (B,) int64 positions in the prepared split
    mask_probability:   (B, 101, 101) float32 P(salt) per pixel
    salt_probability:   (B,) float32 P(tile holds salt) from the empty-tile head, or None
    """

    indices: np.ndarray
    mask_probability: np.ndarray
    salt_probability: np.ndarray | None


class _MirroredPairs(Dataset):
    """A tile's network input and, when asked, that of its mirror image.

    The mirror is cropped and flipped *before* the channels are stacked, as in training,
    so channels that are not mirror-symmetric (``coord_x``) stay what the network knows.
    """

    def __init__(self, tiles: PreparedTiles, indices: np.ndarray, geometry: TileGeometry, channels: Sequence[str], hflip: bool) -> None:
        self.plain = TileDataset(tiles, indices, validation_transform(geometry), channels)
        mirror = A.Compose([A.CenterCrop(height=geometry.crop_size, width=geometry.crop_size), A.HorizontalFlip(p=1.0)])
        self.mirrored = TileDataset(tiles, indices, mirror, channels) if hflip else None

    def __len__(self) -> int:
        return len(self.plain)

    def __getitem__(self, item: int) -> dict:
        sample = self.plain[item]
        out = {"image": sample["image"], "index": sample["index"]}
        if self.mirrored is not None:
            out["mirrored"] = self.mirrored[item]["image"]
        return out


def predict_tiles(
    net: nn.Module,
    tiles: PreparedTiles,
    indices: np.ndarray,
    channels: Sequence[str],
    settings: InferenceSettings,
) -> Iterator[TileBatch]:
    """Stream the network's predictions for ``tiles[indices]``, one batch at a time.

    Args:
        net: a `salt.models.SegmentationNetwork` (returns a `SegmentationOutput`).
        tiles: padded tiles; their `geometry` says where the crop and the tile lie.
        indices: (M,) positions of the tiles to predict.
        channels: the run's input channels (`salt.data.channels`).

    Yields:
        `TileBatch` in the order of `indices`; the flip TTA mean is taken over
        probabilities (after the sigmoid), for the mask and the empty-tile head alike.
    """
    geometry = tiles.geometry
    device = settings.torch_device
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    net = net.to(device, memory_format=memory_format).eval()
    dataset = _MirroredPairs(tiles, np.asarray(indices, dtype=np.int64), geometry, channels, settings.hflip)
    loader = DataLoader(
        dataset,
        batch_size=int(settings.batch_size),
        shuffle=False,
        num_workers=int(settings.num_workers),
        pin_memory=device.type == "cuda",
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.bf16)
    with torch.inference_mode(), autocast:
        for batch in loader:
            images = batch["image"]
            if settings.hflip:
                # One forward pass over both orientations: better use of the batch.
                images = torch.cat([images, batch["mirrored"]])
            output = net(images.to(device, non_blocking=True).contiguous(memory_format=memory_format))
            crops = torch.sigmoid(output.mask_logits.float())[:, 0]
            salt = None if output.empty_logit is None else torch.sigmoid(output.empty_logit.float())
            if settings.hflip:
                size = len(batch["image"])
                # Mirror back in the crop's frame before cutting the tile out: the tile is
                # not centred in the crop (148 - 101 is odd), so mirroring after the cut
                # would shift the prediction by a pixel.
                crops = (crops[:size] + crops[size:].flip(-1)) / 2
                salt = None if salt is None else (salt[:size] + salt[size:]) / 2
            masks = geometry.uncrop(crops)
            yield TileBatch(
                indices=batch["index"].numpy(),
                mask_probability=np.ascontiguousarray(masks.cpu().numpy(), dtype=np.float32),
                salt_probability=None if salt is None else np.ascontiguousarray(salt.cpu().numpy(), dtype=np.float32),
            )
