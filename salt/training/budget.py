"""A time budget for a run (`budget_minutes`): the epochs that fit it on this machine.

A recipe's epoch count fits one machine: the CPU recipe's 44 epochs take 50 minutes on a
Xeon that computes bf16 natively and about 110 on a CPU that must train in fp32. With a
budget, the run times a few training steps of its own network (full and half resolution,
its precision and memory layout) and a validation batch before the first epoch, and picks
the most epochs whose estimated time fits, keeping the configured share of half-resolution
epochs (`low_resolution_epochs / trainer.max_epochs`). The learning-rate schedule is then
built for that length, so the run ends its cosine decay inside the budget instead of being
cut off mid-schedule.

Timed steps are a noisy guide on a shared machine (the same full-resolution step measured
1.1 to 1.7 s within 40 minutes on one idle 2-core VM), so the plan is made again from the
clock at the end of the first epoch and of the first full-resolution epoch: the epochs
still to come are estimated from those, the count of epochs (and, while the run is still
at half resolution, of half-resolution epochs) is set to what fits the time left, and the
schedule's end is moved there (`WarmupCosine.retarget`; the warm-up is left alone).
A VM can also slow down later in a run (full-resolution epochs from 4.1 to 5.1 minutes in
one hour), so after every further epoch the plan is checked against the clock, with the
median of the latest three epochs of each resolution as the estimate, and shortened when it
no longer fits. The median lets one slow epoch pass (judged by the latest epoch alone, a
run cut 40 epochs to 38 for one half-resolution epoch of 1.0 minute among ones of 0.9) and
follows a VM that stays slow within two epochs. Those checks only ever shorten: an epoch
that ran fast for a while does not lengthen the run, so the schedule's end does not swing
back and forth. Every plan ends with a full-resolution epoch (unless all epochs are meant to
be at half resolution): a run that runs out of time during its half-resolution epochs
trains one more at full resolution, beyond the budget, rather than ending unscored.

The plan is stored in every checkpoint: a resumed run keeps the length it started with
(its schedule depends on it), whatever the machine it resumes on. Given the plan, the run
is as deterministic as one with fixed epochs; the plan itself depends on the machine.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass

import pytorch_lightning as pl
import torch

from salt.errors import SaltError

log = logging.getLogger(__name__)

# The first plan is made against this share of the budget. Steps inside the Trainer run slower
# than the bare timed ones (batch assembly, logging, the schedule; on an AVX2-only CPU
# 0.48 s against 0.42 s at half resolution, 1.2 against 1.12 s at full), and checkpoints
# and pictures cost seconds an epoch: the estimate of a 47.7-minute run (15 half- and 6
# full-resolution epochs of 175 steps) from the timed steps was 42.3 minutes, 0.89 of it.
PLANNED_SHARE = 0.88
# Re-plans use epochs timed on the clock, which leave out only their checkpoint writes.
REPLANNED_SHARE = 0.98
# A resolution's epochs are estimated by the median of its latest ones on the clock.
RECENT_EPOCHS = 3


@dataclass(frozen=True)
class StepTimes:
    """Seconds per training step at full and at half resolution, and per validation batch."""

    full: float
    low: float
    validation: float


@dataclass(frozen=True)
class EpochPlan:
    """Epochs of the run, the first `low_resolution_epochs` of them at half resolution;
    `minutes`: the estimate, when planned, for the epochs still to come."""

    max_epochs: int
    low_resolution_epochs: int
    minutes: float


def epoch_seconds(times: StepTimes, *, train_batches: int, val_batches: int, low_resolution: bool, validate_low: bool = True) -> float:
    """An epoch's estimate; `validate_low`: the half-resolution epochs validate too."""
    step = times.low if low_resolution else times.full
    validated = validate_low or not low_resolution
    return train_batches * step + (val_batches * times.validation if validated else 0.0)


def plan_epochs(
    seconds: float, times: StepTimes, *, train_batches: int, val_batches: int, low_share: float, validate_low: bool = True
) -> EpochPlan | None:
    """The most epochs whose estimated time fits in `seconds`, `round(low_share × epochs)`
    of them at half resolution (the first ones); None when not even one fits."""
    batches = {"train_batches": train_batches, "val_batches": val_batches, "validate_low": validate_low}
    low_epoch = epoch_seconds(times, low_resolution=True, **batches)
    full_epoch = epoch_seconds(times, low_resolution=False, **batches)
    if min(low_epoch, full_epoch) <= 0:
        raise SaltError("budget_minutes: an epoch would take no time (no training batches?), so no count of them fits a budget")
    plan = replan_epochs(seconds, done=0, low_fixed=None, low_epoch=low_epoch, full_epoch=full_epoch, low_share=low_share)
    return plan if plan.max_epochs > 0 else None


def replan_epochs(seconds: float, *, done: int, low_fixed: int | None, low_epoch: float, full_epoch: float, low_share: float) -> EpochPlan:
    """The most epochs whose remaining ones fit in `seconds`, `done` epochs being behind.

    low_fixed: the count of half-resolution epochs once the run has left them behind; None
    while it is still at half resolution, when `round(low_share × epochs)` of the new
    total train at half resolution (at least the `done` ones). `minutes` is the estimate
    for the epochs still to come. At least `done` epochs: the run stops after this one
    when no further epoch fits.

    Unless every epoch is meant to be at half resolution (`low_share` 1), the last one is
    at full resolution: the run's score and its best weights come from full-resolution
    epochs (half-resolution ones may skip validation, and their full-resolution scores mean
    little). So a run still at half resolution when its time runs out gets one
    full-resolution epoch beyond the budget rather than none.
    """
    if not 0.0 <= low_share <= 1.0:
        raise ValueError(f"low_share={low_share}: must lie in [0, 1]")
    if min(low_epoch, full_epoch) <= 0:
        raise ValueError(f"epochs of {low_epoch} s and {full_epoch} s: must take some time")
    end_at_full = low_fixed is None and low_share < 1.0
    plan = EpochPlan(done, done if low_fixed is None else low_fixed, 0.0)
    if end_at_full and done > 0:
        plan = EpochPlan(done + 1, done, full_epoch / 60)
    epochs = done + 1
    while True:
        low = low_fixed if low_fixed is not None else max(done, round(low_share * epochs))
        low = min(low, epochs - 1 if end_at_full else epochs)
        total = max(0, low - done) * low_epoch + (epochs - max(low, done)) * full_epoch
        if total > seconds:
            return plan
        plan = EpochPlan(epochs, low, total / 60)
        epochs += 1


def limited(batches: int, limit: int | float | None) -> int:
    """Batches an epoch runs under Lightning's `limit_*_batches` (an int caps, a float scales)."""
    if limit is None:
        return batches
    if isinstance(limit, int) and not isinstance(limit, bool):
        return min(batches, limit)
    return min(batches, max(1, int(batches * float(limit)))) if limit > 0 else 0


def measure_step_times(
    module: pl.LightningModule,
    *,
    batch_size: int,
    channels: int,
    crop_size: int,
    device: torch.device,
    train_context: Callable[[], AbstractContextManager],
    val_context: Callable[[], AbstractContextManager],
    warmup: int = 2,
    steps: int = 7,
) -> StepTimes:
    """Time forward + loss + backward + optimiser step of a copy of the module's network, at
    full and at half resolution, and an evaluation forward with its loss; the run's own
    network, optimiser, random streams and weights are left untouched."""
    net = copy.deepcopy(module.net).to(device).train()
    optimizer = module.optimizer_factory(params=net.parameters())
    memory_format = torch.channels_last if module.hparams.channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch_size, channels, crop_size, crop_size, generator=generator)
    mask = (torch.rand(batch_size, 1, crop_size, crop_size, generator=generator) > 0.7).float()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(*kinds: Callable[[], None]) -> list[float]:
        """The median step of each kind, the kinds taken in turn: a machine whose speed drifts
        (a VM) slows them alike, so their ratio, which sets the share of the budget each
        resolution gets before the full-resolution one is seen on the clock, holds. The
        median: a step slowed by something else on the machine does not set the plan."""
        for _ in range(warmup):
            for step in kinds:
                step()
        seconds: list[list[float]] = [[] for _ in kinds]
        for _ in range(steps):
            for step, taken in zip(kinds, seconds):
                synchronize()
                start = time.perf_counter()
                step()
                synchronize()
                taken.append(time.perf_counter() - start)
        return [statistics.median(taken) for taken in seconds]

    # Each resolution with its epochs' loss (a Lovász term costs a sort per tile); validation
    # mostly follows full-resolution epochs.
    full_loss = module.loss_at(low_resolution=False)

    def training(batch: dict, loss: Callable) -> Callable[[], None]:
        inputs = batch["image"].to(device).contiguous(memory_format=memory_format)
        target = batch["mask"].to(device)

        def step() -> None:
            with train_context():
                output = net(inputs)
                total, _ = loss(output.mask_logits, output.empty_logit, target)
            total.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    def validation() -> None:
        with torch.no_grad(), val_context():
            output = net(image.to(device).contiguous(memory_format=memory_format))
            full_loss(output.mask_logits, output.empty_logit, mask.to(device))

    # Dropout in the copy draws from the global generators; forked, the run draws what it
    # would have drawn without this measurement.
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        full, low = timed(
            training({"image": image, "mask": mask}, full_loss),
            training(module.low_resolution_batch({"image": image, "mask": mask}, 0), module.loss_at(low_resolution=True)),
        )
        net.eval()
        (val,) = timed(validation)
    return StepTimes(full=full, low=low, validation=val)


class TimeBudget(pl.Callback):
    """Plans `trainer.max_epochs` and the module's `low_resolution_epochs` to fit `minutes`
    of training (see the module docstring). Runs in `setup`, before the optimiser and its
    schedule are built; a resumed run takes the plan from its checkpoint instead.

    Args:
        minutes: the budget for the whole fit (training and validation epochs).
        resuming: the run continues from a checkpoint, which holds the plan.
        on_plan: called with the plan once it is chosen or restored (the run records it in
            its config.yaml).
    """

    def __init__(self, minutes: float, *, resuming: bool = False, on_plan: Callable[[EpochPlan], None] | None = None) -> None:
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not math.isfinite(minutes) or minutes <= 0:
            raise SaltError(f"budget_minutes={minutes!r}: must be a positive number of minutes (or null)")
        self.minutes = float(minutes)
        self.resuming = resuming
        self.on_plan = on_plan
        self.plan: EpochPlan | None = None
        self.times: StepTimes | None = None
        self._target: tuple[pl.Trainer, pl.LightningModule] | None = None
        self._clock: dict = {}  # what re-planning needs; empty in a resumed run, which keeps its plan

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.fast_dev_run:
            return
        if self.resuming:
            # The checkpoint's plan arrives in load_state_dict, after this hook and before
            # the optimiser and its schedule are built.
            self._target = (trainer, pl_module)
            return
        start = time.perf_counter()
        data = trainer.datamodule
        times = measure_step_times(
            pl_module,
            batch_size=data.batch_size,
            channels=len(data.channels),
            crop_size=data.geometry.crop_size,
            device=trainer.strategy.root_device,
            train_context=trainer.precision_plugin.train_step_context,
            val_context=trainer.precision_plugin.val_step_context,
        )
        train_batches = limited(len(data.train_dataloader()), trainer.limit_train_batches)
        val_batches = limited(len(data.val_dataloader()), trainer.limit_val_batches)
        measured = time.perf_counter() - start
        configured = trainer.max_epochs
        low_share = min(1.0, pl_module.hparams.low_resolution_epochs / configured) if configured and configured > 0 else 0.0
        seconds = PLANNED_SHARE * (self.minutes * 60 - measured)
        self.times = times
        batches = {
            "train_batches": train_batches,
            "val_batches": val_batches,
            "validate_low": bool(pl_module.hparams.get("validate_low_resolution", True)),
        }
        self._clock = {"start": start, "batches": batches, "low_share": low_share, "timed": {}}
        # Every process of a multi-GPU run trains the epochs rank 0 planned.
        plan = trainer.strategy.broadcast(plan_epochs(seconds, times, low_share=low_share, **batches))
        if plan is None:
            first = epoch_seconds(times, low_resolution=round(low_share) == 1, **batches)
            raise SaltError(
                f"budget_minutes={self.minutes:g}: one epoch takes about {first / PLANNED_SHARE / 60:.1f} min on this "
                "machine; give a larger budget, or budget_minutes=null for the configured epochs"
            )
        self._apply(trainer, pl_module, plan)
        log.info(
            "budget_minutes=%g: %d epochs (%d at half resolution), about %.1f min; steps %.2f s full, %.2f s half "
            "resolution, validation batches %.2f s (%d + %d batches an epoch; measured in %.0f s)",
            self.minutes, self.plan.max_epochs, self.plan.low_resolution_epochs, self.plan.minutes,
            times.full, times.low, times.validation, train_batches, val_batches, measured,
        )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.resuming and self.plan is None and not trainer.fast_dev_run:
            raise SaltError(
                f"budget_minutes={self.minutes:g}: the checkpoint being resumed holds no plan (the run started with "
                "fixed epochs); resume it with budget_minutes=null, or start it over with resume=false"
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Re-plan from the clock after the first epoch of each resolution, and shorten the
        plan after any later epoch that shows it no longer fits (module docstring)."""
        if not self._clock or trainer.sanity_checking:  # no clock: a resumed run keeps its plan
            return
        now = time.perf_counter()
        took, self._epoch_start = now - self._epoch_start, now
        epoch = trainer.current_epoch
        low_resolution = epoch < self.plan.low_resolution_epochs
        timed = self._clock["timed"]  # each resolution's epochs so far, seconds on the clock
        shorten_only = bool(timed.get(low_resolution))
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        if any(hasattr(s, "total_steps") and not hasattr(s, "retarget") for s in schedulers):
            return  # a schedule built for the run's length that cannot move its end
        estimate = {low: epoch_seconds(self.times, low_resolution=low, **self._clock["batches"]) for low in (True, False)}
        timed.setdefault(low_resolution, []).append(took)
        recent = {low: statistics.median(seconds[-RECENT_EPOCHS:]) for low, seconds in timed.items()}
        # The resolution not yet seen on the clock: its estimate, scaled as this one's was.
        ratio = recent[low_resolution] / estimate[low_resolution]
        low_epoch = recent.get(True, estimate[True] * ratio)
        full_epoch = recent.get(False, estimate[False] * ratio)
        left = self.minutes * 60 - (now - self._clock["start"])
        plan = replan_epochs(
            REPLANNED_SHARE * left,
            done=epoch + 1,
            low_fixed=None if low_resolution else self.plan.low_resolution_epochs,
            low_epoch=low_epoch,
            full_epoch=full_epoch,
            low_share=self._clock["low_share"],
        )
        plan = trainer.strategy.broadcast(plan)
        if (plan.max_epochs, plan.low_resolution_epochs) == (self.plan.max_epochs, self.plan.low_resolution_epochs):
            return
        if shorten_only and plan.max_epochs >= self.plan.max_epochs:
            return
        log.info(
            "budget_minutes=%g: epoch %d took %.1f min (%s resolution); re-planned to %d epochs (%d at half resolution), "
            "%.1f min to go (was %d, %d)",
            self.minutes, epoch, took / 60, "half" if low_resolution else "full", plan.max_epochs,
            plan.low_resolution_epochs, plan.minutes, self.plan.max_epochs, self.plan.low_resolution_epochs,
        )
        if plan.minutes * 60 > left:
            log.warning(
                "budget_minutes=%g: no time is left for the full-resolution epochs; the run trains one (%.1f min) "
                "beyond the budget, for its score and best weights",
                self.minutes, plan.minutes,
            )
        self._apply(trainer, pl_module, plan)
        for scheduler in schedulers:
            if hasattr(scheduler, "retarget"):
                scheduler.retarget(int(trainer.estimated_stepping_batches))

    def state_dict(self) -> dict:
        if self.plan is None:
            return {}
        return {"minutes": self.minutes, "plan": asdict(self.plan), "times": asdict(self.times) if self.times else None}

    def load_state_dict(self, state_dict: dict) -> None:
        if not state_dict:
            return
        if float(state_dict["minutes"]) != self.minutes:
            log.warning("budget_minutes=%g: the run started with %g and keeps the length planned then", self.minutes, state_dict["minutes"])
        self.times = StepTimes(**state_dict["times"]) if state_dict.get("times") else None
        plan = EpochPlan(**state_dict["plan"])
        if self._target is not None:
            self._apply(*self._target, plan)
            log.info("budget_minutes: resumed with the plan the run started with, %d epochs (%d at half resolution)", plan.max_epochs, plan.low_resolution_epochs)

    def _apply(self, trainer: pl.Trainer, pl_module: pl.LightningModule, plan: EpochPlan) -> None:
        self.plan = plan
        trainer.fit_loop.max_epochs = plan.max_epochs
        pl_module.hparams.low_resolution_epochs = plan.low_resolution_epochs
        if self.on_plan is not None:
            self.on_plan(plan)
