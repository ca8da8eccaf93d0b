"""Learning-rate schedules that need to know the run's length in optimiser steps."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from salt.errors import SaltError


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_fraction: float = 0.03,
    final_fraction: float = 0.01,
) -> LambdaLR:
    """Linear warm-up from ~0 to the optimiser's lr over the first `warmup_fraction` of the
    steps, then a half cosine down to `final_fraction` of it at the last step.

    Stepped once per optimiser step (`scheduler.interval: step`). `total_steps` comes from
    the trainer (max_epochs × batches per epoch) when the scheduler is built by
    `SaltSegmentation.configure_optimizers`. From scratch, Adam at full rate in the first
    steps sends BatchNorm statistics astray; the warm-up avoids that.
    """
    total_steps = int(total_steps)
    if total_steps < 1:
        raise SaltError(f"scheduler: total_steps={total_steps}; the run must have at least one step")
    if not 0.0 <= warmup_fraction < 1.0:
        raise SaltError(f"scheduler.warmup_fraction={warmup_fraction}: must lie in [0, 1)")
    if not 0.0 <= final_fraction <= 1.0:
        raise SaltError(f"scheduler.final_fraction={final_fraction}: must lie in [0, 1]")
    warmup = max(1, round(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
