"""What every decoder shares: the plan of stages read off the encoder's strides, and the
walk from the bottleneck back up to input resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor, nn

from salt.errors import ModelConfigError
from salt.models.blocks import spatial_dropout


class DecoderStage(NamedTuple):
    """One decoder block's geometry.

    ``scale``: how much the block upsamples (deeper stride / this stride; 1 where two
    encoder levels share a stride). ``skip_channels``: channels of the encoder map it joins,
    0 for the last stage, which has no skip and brings the map to input resolution.
    ``reduction``: stride of the block's output relative to the input image.
    """

    scale: int
    skip_channels: int
    reduction: int


def plan_stages(channels: Sequence[int], reductions: Sequence[int]) -> list[DecoderStage]:
    """Decoder stages, deepest first, for encoder maps listed shallowest first.

    ``n`` encoder levels give ``n`` stages: one per skip (levels ``n-2`` … 0), then one
    without a skip from stride ``reductions[0]`` to 1. A ResNet (strides 2, 4, 8, 16, 32)
    gives scales 2, 2, 2, 2, 2; with its max-pool dropped (2, 2, 4, 8, 16): 2, 2, 2, 1, 2.
    """
    stages = [
        DecoderStage(
            scale=reductions[level + 1] // reductions[level],
            skip_channels=channels[level],
            reduction=reductions[level],
        )
        for level in reversed(range(len(channels) - 1))
    ]
    stages.append(DecoderStage(scale=reductions[0], skip_channels=0, reduction=1))
    return stages


def per_stage(values: int | Sequence[int], count: int, option: str) -> list[int]:
    """One positive channel count per stage, deepest first.

    An int applies to every stage. A list gives the deepest stages first; extra trailing
    entries are unused, so one config serves encoders with 4 or 5 levels.
    """
    listed = [values] * count if isinstance(values, int) else list(values)
    if len(listed) < count:
        raise ModelConfigError(
            f"{option}={listed}: the encoder has {count} levels, so give {count} channel counts "
            "(deepest first) or one integer"
        )
    listed = listed[:count]
    if any(isinstance(value, bool) or not isinstance(value, int) or value < 1 for value in listed):
        raise ModelConfigError(f"{option}={listed}: channel counts must be positive integers")
    return listed


class Decoder(nn.Module):
    """Runs decoder blocks from the bottleneck to input resolution.

    forward: encoder maps, shallowest first → one map per stage, deepest first; stage ``j``
    is ``[B, stage_channels[j], H / stage_reductions[j], W / stage_reductions[j]]`` and the
    last is at input resolution. Each block is called as ``block(x, skip)`` with ``skip``
    None for the last one. Spatial dropout sits between blocks (not after the last: the
    mask head and the hypercolumn come next and have their own capacity).
    """

    def __init__(
        self,
        blocks: Sequence[nn.Module],
        stages: Sequence[DecoderStage],
        stage_channels: Sequence[int],
        block_dropout: float,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.between_blocks = spatial_dropout(block_dropout, "model.block_dropout")
        self.stage_channels: tuple[int, ...] = tuple(stage_channels)
        self.stage_reductions: tuple[int, ...] = tuple(stage.reduction for stage in stages)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        skips: list[Tensor | None] = [*reversed(features[:-1]), None]
        x = features[-1]
        outputs = []
        for index, (block, skip) in enumerate(zip(self.blocks, skips)):
            x = block(x, skip)
            if index < len(self.blocks) - 1:
                x = self.between_blocks(x)
            outputs.append(x)
        return outputs
