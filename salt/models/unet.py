"""U-Net: each decoder block upsamples and concatenates the encoder map of the same stride."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from salt.models.blocks import ConvBnReLU, Upsample, check_upsampling, spatial_dropout
from salt.models.decoder import Decoder, per_stage, plan_stages
from salt.models.encoder import Encoder
from salt.models.network import SegmentationNetwork


class UnetBlock(nn.Module):
    """Upsample, concatenate the skip, two 3×3 conv blocks.

    forward: ``x [B, in, h, w]``, ``skip [B, skip, h·scale, w·scale]`` or None →
    ``[B, out, h·scale, w·scale]``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        scale: int,
        upsampling: str,
        skip_dropout: float,
    ) -> None:
        super().__init__()
        self.upsample = Upsample(in_channels, out_channels, scale, upsampling)
        self.skip_dropout = spatial_dropout(skip_dropout, "model.skip_dropout")
        self.convs = nn.Sequential(
            ConvBnReLU(out_channels + skip_channels, out_channels),
            ConvBnReLU(out_channels, out_channels),
        )

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = self.upsample(x)
        if skip is not None:
            x = torch.cat([x, self.skip_dropout(skip)], dim=1)
        return self.convs(x)


class UnetDecoder(Decoder):
    """U-Net decoder over an encoder's maps; ``decoder_channels`` are the stage widths,
    deepest first."""

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_reductions: Sequence[int],
        decoder_channels: int | Sequence[int],
        upsampling: str,
        block_dropout: float,
        skip_dropout: float,
    ) -> None:
        check_upsampling(upsampling)
        stages = plan_stages(encoder_channels, encoder_reductions)
        widths = per_stage(decoder_channels, len(stages), "model.decoder_channels")
        blocks, in_channels = [], encoder_channels[-1]
        for stage, width in zip(stages, widths):
            blocks.append(UnetBlock(in_channels, stage.skip_channels, width, stage.scale, upsampling, skip_dropout))
            in_channels = width
        super().__init__(blocks, stages, widths, block_dropout)


class Unet(SegmentationNetwork):
    """U-Net on any `Encoder`; see `SegmentationNetwork` for the hypercolumn and head options.

    Args:
        decoder_channels: width of each decoder stage, deepest first (one per encoder level).
        upsampling: ``transposed`` (learned) or ``bilinear`` (interpolation + conv).
        block_dropout: `nn.Dropout2d` rate between decoder blocks.
        skip_dropout: `nn.Dropout2d` rate on each encoder map before it is concatenated.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        decoder_channels: int | Sequence[int] = (256, 128, 64, 32, 16),
        upsampling: str = "transposed",
        block_dropout: float = 0.2,
        skip_dropout: float = 0.2,
        hypercolumn: bool = True,
        hypercolumn_channels: int | Sequence[int] = (128, 64, 32, 16, 8),
        empty_head: bool = True,
        empty_head_hidden: int = 64,
        empty_head_dropout: float = 0.0,
    ) -> None:
        decoder = UnetDecoder(
            encoder.channels, encoder.reductions, decoder_channels, upsampling, block_dropout, skip_dropout
        )
        super().__init__(
            encoder,
            decoder,
            hypercolumn=hypercolumn,
            hypercolumn_channels=hypercolumn_channels,
            empty_head=empty_head,
            empty_head_hidden=empty_head_hidden,
            empty_head_dropout=empty_head_dropout,
        )
