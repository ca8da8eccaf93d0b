"""LinkNet: each decoder block upsamples and adds the encoder map of the same stride.

Adding instead of concatenating keeps the decoder as wide as the encoder's skips and no
wider, which makes it lighter than a U-Net on the same backbone.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from salt.errors import ModelConfigError
from salt.models.blocks import ConvBnReLU, Upsample, check_upsampling, spatial_dropout
from salt.models.decoder import Decoder, plan_stages
from salt.models.encoder import Encoder
from salt.models.network import SegmentationNetwork


class LinknetBlock(nn.Module):
    """1×1 conv down to a quarter of the channels, upsample, 1×1 conv up, add the skip.

    forward: ``x [B, in, h, w]``, ``skip [B, out, h·scale, w·scale]`` or None →
    ``[B, out, h·scale, w·scale]``. The bottleneck of ``in / 4`` channels is where the
    (expensive) upsampling happens, as in the LinkNet paper.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: int,
        upsampling: str,
        skip_dropout: float,
    ) -> None:
        super().__init__()
        narrow = max(in_channels // 4, 1)
        self.body = nn.Sequential(
            ConvBnReLU(in_channels, narrow, kernel_size=1),
            Upsample(narrow, narrow, scale, upsampling),
            ConvBnReLU(narrow, out_channels, kernel_size=1),
        )
        self.skip_dropout = spatial_dropout(skip_dropout, "model.skip_dropout")

    def forward(self, x: Tensor, skip: Tensor | None) -> Tensor:
        x = self.body(x)
        if skip is not None:
            x = x + self.skip_dropout(skip)
        return x


class LinknetDecoder(Decoder):
    """LinkNet decoder: each stage is as wide as the encoder map it adds; the last stage,
    which has no skip, is ``final_channels`` wide."""

    def __init__(
        self,
        encoder_channels: Sequence[int],
        encoder_reductions: Sequence[int],
        final_channels: int,
        upsampling: str,
        block_dropout: float,
        skip_dropout: float,
    ) -> None:
        check_upsampling(upsampling)
        stages = plan_stages(encoder_channels, encoder_reductions)
        widths = [stage.skip_channels for stage in stages[:-1]] + [final_channels]
        blocks, in_channels = [], encoder_channels[-1]
        for stage, width in zip(stages, widths):
            blocks.append(LinknetBlock(in_channels, width, stage.scale, upsampling, skip_dropout))
            in_channels = width
        super().__init__(blocks, stages, widths, block_dropout)


class Linknet(SegmentationNetwork):
    """LinkNet on any `Encoder`; see `SegmentationNetwork` for the hypercolumn and head options.

    Args:
        final_channels: width of the last decoder stage (input resolution).
        upsampling: ``transposed`` (learned) or ``bilinear`` (interpolation + conv).
        block_dropout: `nn.Dropout2d` rate between decoder blocks.
        skip_dropout: `nn.Dropout2d` rate on each encoder map before it is added.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        final_channels: int = 32,
        upsampling: str = "transposed",
        block_dropout: float = 0.2,
        skip_dropout: float = 0.2,
        hypercolumn: bool = True,
        hypercolumn_channels: int | Sequence[int] = (128, 64, 32, 16, 8),
        empty_head: bool = True,
        empty_head_hidden: int = 64,
        empty_head_dropout: float = 0.0,
    ) -> None:
        if isinstance(final_channels, bool) or not isinstance(final_channels, int) or final_channels < 1:
            raise ModelConfigError(f"model.final_channels={final_channels!r}: must be a positive integer")
        decoder = LinknetDecoder(
            encoder.channels, encoder.reductions, final_channels, upsampling, block_dropout, skip_dropout
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
