"""The composed network: encoder → decoder → (hypercolumn) → mask head, plus the
empty-tile head on the bottleneck, behind one fixed output type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor, nn

from salt.errors import ModelConfigError
from salt.models.decoder import Decoder
from salt.models.encoder import Encoder
from salt.models.heads import EmptyTileHead, MaskHead
from salt.models.hypercolumn import Hypercolumn

# Input sides must be multiples of this: the deepest stride of the usual backbones, kept
# even when the max-pool drop would allow 16, so that toggling it never changes the data.
SIZE_MULTIPLE = 32


class SegmentationOutput(NamedTuple):
    """What every configuration returns.

    mask_logits: ``[B, 1, H, W]`` per-pixel salt logits at input resolution (before sigmoid).
    empty_logit: ``[B]`` logit of the empty-tile head, positive = "tile contains salt";
        None when the head is switched off.
    """

    mask_logits: Tensor
    empty_logit: Tensor | None


def check_input_size(height: int, width: int, multiple: int = SIZE_MULTIPLE) -> None:
    """Raise a `ModelConfigError` unless both sides are positive multiples of ``multiple``."""
    if height > 0 and width > 0 and height % multiple == 0 and width % multiple == 0:
        return
    bad = height if height <= 0 or height % multiple else width
    suggestion = max(multiple, -(-bad // multiple) * multiple)
    raise ModelConfigError(
        f"input {height}×{width}: the network takes sides that are multiples of {multiple} "
        f"(128 by default; 160 and 256 also work); pad or crop to {suggestion}"
    )


class SegmentationNetwork(nn.Module):
    """Encoder, decoder and heads, wired the same way for every architecture.

    forward: ``[B, in_chans, H, W]`` with H and W multiples of 32 → `SegmentationOutput`.

    Architectures (`salt.models.Unet`, `salt.models.Linknet`) build their decoder from the
    encoder's channels and strides and pass it here.

    Args:
        encoder: the backbone; its last map is the bottleneck.
        decoder: maps encoder features to one map per stage, the last at input resolution.
        hypercolumn: concatenate every decoder stage at input resolution before the final
            convolution (FPN-style); off, the final convolution sees the last stage only.
        hypercolumn_channels: channels each stage keeps in the hypercolumn, deepest first.
        empty_head: add the per-tile "contains salt" logit.
        empty_head_hidden: width of the empty-tile head's hidden layer.
        empty_head_dropout: dropout rate before its output layer.
    """

    def __init__(
        self,
        encoder: Encoder,
        decoder: Decoder,
        *,
        hypercolumn: bool,
        hypercolumn_channels: int | Sequence[int],
        empty_head: bool,
        empty_head_hidden: int,
        empty_head_dropout: float,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        last_stage_channels = decoder.stage_channels[-1]
        if hypercolumn:
            self.hypercolumn: Hypercolumn | None = Hypercolumn(decoder.stage_channels, hypercolumn_channels)
            mask_in_channels = self.hypercolumn.out_channels
        else:
            self.hypercolumn = None
            mask_in_channels = last_stage_channels
        self.mask_head = MaskHead(mask_in_channels, last_stage_channels)
        self.empty_head = (
            EmptyTileHead(encoder.channels[-1], empty_head_hidden, empty_head_dropout) if empty_head else None
        )
        self.size_multiple = max(SIZE_MULTIPLE, max(encoder.reductions))

    def forward(self, image: Tensor) -> SegmentationOutput:
        check_input_size(image.shape[-2], image.shape[-1], self.size_multiple)
        features = self.encoder(image)
        stages = self.decoder(features)
        mask_features = self.hypercolumn(stages) if self.hypercolumn is not None else stages[-1]
        mask_logits = self.mask_head(mask_features)
        empty_logit = self.empty_head(features[-1]) if self.empty_head is not None else None
        return SegmentationOutput(mask_logits, empty_logit)
