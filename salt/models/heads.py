"""The two outputs of the network: per-pixel mask logits and the per-tile salt logit."""

from __future__ import annotations

from torch import Tensor, nn

from salt.errors import ModelConfigError
from salt.models.blocks import ConvBnReLU


class MaskHead(nn.Sequential):
    """The final convolution: ``[B, in, H, W]`` → ``[B, 1, H, W]`` salt logits (before sigmoid).

    A 3×3 conv block first, so that the concatenated hypercolumn levels are mixed with
    spatial context before the per-pixel 1×1 decision.
    """

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__(ConvBnReLU(in_channels, hidden_channels), nn.Conv2d(hidden_channels, 1, kernel_size=1))


class EmptyTileHead(nn.Module):
    """Global average pooling of the bottleneck → small MLP → one logit per tile.

    forward: ``[B, C, h, w]`` → ``[B]``. Positive means "the tile contains salt" (the same
    sign as the mask logits), so its target is ``mask.any()``. Over a third of the
    training tiles are empty, and a wrong empty/non-empty call costs a whole tile's score.
    """

    def __init__(self, in_channels: int, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ModelConfigError(f"model.empty_head_hidden={hidden!r}: must be a positive integer")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ModelConfigError(f"model.empty_head_dropout={dropout!r}: must be a dropout rate in [0, 1)")
        self.mlp = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(in_channels, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(hidden, 1),
        )

    def forward(self, bottleneck: Tensor) -> Tensor:
        return self.mlp(bottleneck).squeeze(1)
