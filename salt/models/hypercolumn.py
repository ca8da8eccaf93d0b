"""The FPN-style hypercolumn: every decoder stage, seen at input resolution, side by side.

Deep stages carry the context that says "this is a salt body", shallow ones the edges;
concatenating them lets the final convolution use both for every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salt.models.blocks import ConvBnReLU
from salt.models.decoder import per_stage


class Hypercolumn(nn.Module):
    """Each decoder stage → its own 3×3 conv block → bilinear upsampling to input
    resolution → concatenation.

    forward: stage maps, deepest first, ``[B, stage_channels[j], H / r_j, W / r_j]``, the
    last at input resolution → ``[B, out_channels, H, W]`` with
    ``out_channels = sum(channels)``.

    Args:
        stage_channels: channels of each decoder stage, deepest first.
        channels: channels each stage keeps after its conv block, deepest first (one
            integer for all). The conv runs before the upsampling, where maps are small.
    """

    def __init__(self, stage_channels: Sequence[int], channels: int | Sequence[int]) -> None:
        super().__init__()
        widths = per_stage(channels, len(stage_channels), "model.hypercolumn_channels")
        self.levels = nn.ModuleList(
            ConvBnReLU(in_channels, width) for in_channels, width in zip(stage_channels, widths)
        )
        self.out_channels = sum(widths)

    def forward(self, stages: Sequence[Tensor]) -> Tensor:
        size = stages[-1].shape[-2:]
        columns = []
        for level, stage in zip(self.levels, stages):
            column = level(stage)
            if column.shape[-2:] != size:
                column = F.interpolate(column, size=size, mode="bilinear", align_corners=False)
            columns.append(column)
        return torch.cat(columns, dim=1)
