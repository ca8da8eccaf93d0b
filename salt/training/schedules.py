"""Learning-rate schedules that need to know the run's length in optimiser steps."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from salt.errors import SaltError


class WarmupCosine(LRScheduler):
    """Linear warm-up from ~0 to the optimiser's lr over `warmup_steps`, then a half cosine
    down to `final_fraction` of it at `total_steps`, stepped once per optimiser step.

    `retarget` moves the end of the run (a time budget re-planning its epochs) without
    touching the warm-up; the lengths are kept in the scheduler's state, so a resumed run
    follows the schedule it was on.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int, final_fraction: float, last_epoch: int = -1) -> None:
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.final_fraction + (1 - self.final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def retarget(self, total_steps: int) -> None:
        """End the decay at `total_steps` instead; the warm-up stays as it was."""
        self.total_steps = max(int(total_steps), self.warmup_steps + 1)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_fraction: float = 0.03,
    final_fraction: float = 0.01,
) -> WarmupCosine:
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
    return WarmupCosine(optimizer, total_steps=total_steps, warmup_steps=warmup, final_fraction=final_fraction)
