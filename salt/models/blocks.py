"""Layers the decoders, the hypercolumn and the mask head share: conv-BN-ReLU, spatial
dropout, and the two ways of going up one stride level."""

from __future__ import annotations

from torch import nn

from salt.errors import ModelConfigError

UPSAMPLING_MODES = ("transposed", "bilinear")


class ConvBnReLU(nn.Sequential):
    """k×k convolution (same padding), batch norm, ReLU: ``[B, in, H, W]`` → ``[B, out, H, W]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(
            # No bias: the batch norm right after has one.
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def spatial_dropout(rate: float, option: str) -> nn.Module:
    """`nn.Dropout2d` with ``rate``, or the identity when it is 0 (so summaries stay short).

    Whole channels are dropped rather than pixels: neighbouring pixels of a feature map
    are so correlated that pixel dropout barely regularises a convolutional decoder.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ModelConfigError(f"{option}={rate!r}: must be a dropout rate in [0, 1)")
    return nn.Dropout2d(rate) if rate > 0 else nn.Identity()


def check_upsampling(mode: str) -> str:
    """Return ``mode`` if it names an upsampling mode; a `ModelConfigError` otherwise."""
    if mode not in UPSAMPLING_MODES:
        raise ModelConfigError(
            f"model.upsampling={mode!r}: must be one of {', '.join(UPSAMPLING_MODES)}"
        )
    return mode


class Upsample(nn.Sequential):
    """``[B, in, H, W]`` → ``[B, out, H·scale, W·scale]``.

    ``transposed``: a learned transposed convolution with kernel = stride = scale (no
    overlapping kernels, hence no checkerboard artefacts). ``bilinear``: fixed bilinear
    interpolation, then a 3×3 conv block to mix and change channels. ``scale`` 1 is a
    plain 3×3 conv block in both modes: after a dropped stem max-pool two encoder levels
    share a stride, and the decoder still needs one block between them.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, mode: str) -> None:
        check_upsampling(mode)
        if scale == 1:
            layers: list[nn.Module] = [ConvBnReLU(in_channels, out_channels)]
        elif mode == "transposed":
            layers = [
                nn.ConvTranspose2d(in_channels, out_channels, kernel_size=scale, stride=scale, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        else:
            layers = [
                nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False),
                ConvBnReLU(in_channels, out_channels),
            ]
        super().__init__(*layers)
        self.scale = scale
