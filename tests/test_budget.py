"""The time budget: epochs planned from timed steps, recorded, and kept on resume."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from salt.errors import SaltError
from salt.rundir import read_metrics_csv
from salt.training import budget
from salt.training.budget import EpochPlan, StepTimes, TimeBudget, limited, measure_step_times, plan_epochs, replan_epochs
from salt.training.checkpoints import read_checkpoint
from salt.training.module import SaltSegmentation
from salt.training.run import train


def budget_run(compose_train, tmp_path, minutes: float, low_resolution_epochs: int = 2, scheduler: str = "plateau", *extra: str):
    # Two training batches and one validation batch an epoch, by default half of the epochs
    # at half resolution. With the step times the tests give (20 s full, 10 s half, 5 s a
    # validation batch), a half-resolution epoch is 2 × 10 + 5 = 25 s, a full one 45 s.
    return compose_train(
        f"budget_minutes={minutes}", "trainer.max_epochs=4", f"low_resolution_epochs={low_resolution_epochs}",
        "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", f"scheduler={scheduler}", *extra, run_dir=tmp_path / "run",
    )


def test_plan_takes_the_most_epochs_that_fit_with_the_share_at_half_resolution():
    # Half-resolution epoch: 10 steps × 1 s + 2 validation batches × 0.5 s = 11 s; full: 21 s.
    # epochs (half, full) -> seconds: 1 (0, 1) 21; 2 (1, 1) 32; 3 (2, 1) 43; 4 (2, 2) 64;
    # 5 (2, 3) 85; 6 (3, 3) 96; 7 (4, 3) 107 > 100. Python rounds halves to even.
    times = StepTimes(full=2.0, low=1.0, validation=0.5)
    plan = plan_epochs(100.0, times, train_batches=10, val_batches=2, low_share=0.5)
    assert plan == EpochPlan(max_epochs=6, low_resolution_epochs=3, minutes=pytest.approx(96 / 60))
    assert plan_epochs(100.0, times, train_batches=10, val_batches=2, low_share=0.0) == EpochPlan(4, 0, pytest.approx(84 / 60))
    assert plan_epochs(100.0, times, train_batches=10, val_batches=2, low_share=1.0) == EpochPlan(9, 9, pytest.approx(99 / 60))
    # Without validation after the half-resolution epochs (validate_low_resolution=false)
    # they take 10 s: ten of them fit where nine did.
    assert plan_epochs(100.0, times, train_batches=10, val_batches=2, low_share=1.0, validate_low=False) == EpochPlan(10, 10, pytest.approx(100 / 60))
    assert plan_epochs(100.0, times, train_batches=10, val_batches=2, low_share=0.0, validate_low=False) == EpochPlan(4, 0, pytest.approx(84 / 60))


def test_a_budget_shorter_than_one_epoch_plans_nothing_and_the_run_says_so(compose_train, tmp_path, monkeypatch):
    times = StepTimes(full=2.0, low=1.0, validation=0.5)
    assert plan_epochs(20.0, times, train_batches=10, val_batches=2, low_share=0.0) is None
    with pytest.raises(SaltError, match="an epoch would take no time"):
        plan_epochs(20.0, times, train_batches=0, val_batches=0, low_share=0.5)
    # A full-resolution first epoch: 2 × 20 + 5 = 45 s, 45 / 0.88 s on the clock = 0.9 min.
    monkeypatch.setattr(budget, "measure_step_times", lambda module, **options: StepTimes(full=20.0, low=10.0, validation=5.0))
    with pytest.raises(SaltError, match=r"^budget_minutes=0.5: one epoch takes about 0\.9 min on this machine"):
        train(budget_run(compose_train, tmp_path, 0.5, low_resolution_epochs=0))


def test_replanning_fits_the_epochs_still_to_come_into_the_time_left():
    # One half-resolution epoch done; 10 s per half, 20 s per full epoch, share 0.5, 100 s
    # left. epochs (half, full still to come) -> seconds: 2 (0, 1) 20; 3 (1, 1) 30;
    # 4 (1, 2) 50; 5 (1, 3) 70; 6 (2, 3) 80; 7 (3, 3) 90; 8 (3, 4) 110 > 100.
    plan = replan_epochs(100.0, done=1, low_fixed=None, low_epoch=10.0, full_epoch=20.0, low_share=0.5)
    assert plan == EpochPlan(7, 4, pytest.approx(90 / 60))
    # Past the half-resolution epochs their count stays; only full epochs are added.
    assert replan_epochs(50.0, done=5, low_fixed=3, low_epoch=10.0, full_epoch=20.0, low_share=0.5) == EpochPlan(7, 3, pytest.approx(40 / 60))
    # Nothing more fits: the run stops after the epoch just done.
    assert replan_epochs(10.0, done=5, low_fixed=3, low_epoch=10.0, full_epoch=20.0, low_share=0.5) == EpochPlan(5, 3, 0.0)
    # Nothing more fits while the run is still at half resolution: one full-resolution epoch
    # beyond the time left, for the run's score; none where every epoch is meant to be at half.
    assert replan_epochs(5.0, done=3, low_fixed=None, low_epoch=10.0, full_epoch=20.0, low_share=0.75) == EpochPlan(4, 3, pytest.approx(20 / 60))
    assert replan_epochs(5.0, done=3, low_fixed=None, low_epoch=10.0, full_epoch=20.0, low_share=1.0) == EpochPlan(3, 3, 0.0)


def test_a_short_plan_still_ends_at_full_resolution():
    # Half-resolution epoch 11 s, full 21 s, 25 s and a share of 0.9. By share alone two
    # half-resolution epochs (22 s) would be the plan, and no epoch would train at the
    # resolution the run is scored at; the last epoch is kept at full resolution instead.
    times = StepTimes(full=2.0, low=1.0, validation=0.5)
    assert plan_epochs(25.0, times, train_batches=10, val_batches=2, low_share=0.9) == EpochPlan(1, 0, pytest.approx(21 / 60))
    # 60 s: by share alone 4 epochs would all be at half resolution (44 s), and 5 (4 + 1,
    # 65 s) would not fit. With the last one at full resolution: 3 + 1 (54 s).
    assert plan_epochs(60.0, times, train_batches=10, val_batches=2, low_share=0.9) == EpochPlan(4, 3, pytest.approx(54 / 60))
    # Every plan of every budget ends at full resolution unless the share is 1.
    for seconds in range(21, 400, 7):
        for share in (0.5, 0.73, 0.9, 0.99):
            plan = plan_epochs(float(seconds), times, train_batches=10, val_batches=2, low_share=share)
            assert plan.low_resolution_epochs < plan.max_epochs, (seconds, share, plan)


def test_a_run_out_of_time_at_half_resolution_trains_one_full_resolution_epoch_and_is_scored(compose_train, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(budget, "measure_step_times", lambda module, **options: StepTimes(full=20.0, low=10.0, validation=5.0))
    # 2.1 min, 3 of 4 epochs at half resolution without validation (20 s each), full ones 45 s:
    # first plan 3 + 1 epochs (105 s of 0.88 × 126 s). The machine then runs five times
    # slower: epoch 0 ends at 100 s, with 26 s left and full epochs expected to take 225 s.
    # Stopping there would leave the run with no validated epoch at all.
    ticks = iter([0.0, 0.0, 0.0, 100.0] + [400.0] * 20)
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    extra = ("validate_low_resolution=false", "callbacks.early_stopping=null")
    with caplog.at_level("WARNING", logger="salt.training.budget"):
        train(budget_run(compose_train, tmp_path, 2.1, 3, "warmup_cosine", *extra))
    run = tmp_path / "run"
    assert [epoch for epoch, _ in read_metrics_csv(run / "metrics" / "metrics.csv")["val/score"]] == [1]
    config = OmegaConf.load(run / "config.yaml")
    assert (config.trainer.max_epochs, config.low_resolution_epochs) == (2, 1)
    assert (run / "checkpoints" / "best.ckpt").exists()
    assert "trains one (3.8 min) beyond the budget" in caplog.text


def test_the_run_replans_from_the_clock_and_moves_the_schedule_end(compose_train, tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "measure_step_times", lambda module, **options: StepTimes(full=20.0, low=10.0, validation=5.0))
    # The budget's clock: setup starts at 0 and measures nothing; then epoch ends at 12.5 s (a
    # half-resolution epoch in half its estimate of 25 s: full ones are expected in 22.5 s),
    # 25, 37.5, 50, and 95 s for the first full-resolution epoch.
    ticks = iter([0.0, 0.0, 0.0, 12.5, 25.0, 37.5, 50.0, 95.0] + [200.0] * 20)
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    # 2.2 min: first plan 3 epochs (2 half, 1 full) in 95 s of 0.88 × 132 s. After epoch 0,
    # 0.98 × 119.5 s left: 7 epochs, 4 at half resolution (see the test above for the
    # arithmetic with 12.5 / 22.5 s epochs). After epoch 4 (45 s), 0.98 × 37 s left: no
    # further full epoch fits, so the run ends there, its schedule with it.
    train(budget_run(compose_train, tmp_path, 2.2, scheduler="warmup_cosine"))
    run = tmp_path / "run"
    assert [epoch for epoch, _ in read_metrics_csv(run / "metrics" / "metrics.csv")["val/score"]] == [0, 1, 2, 3, 4]
    config = OmegaConf.load(run / "config.yaml")
    assert (config.trainer.max_epochs, config.low_resolution_epochs) == (5, 4)
    checkpoint = read_checkpoint(run / "checkpoints" / "last.ckpt")
    schedule = checkpoint["lr_schedulers"][0]
    assert (schedule["total_steps"], schedule["warmup_steps"], schedule["last_epoch"]) == (10, 1, 10)
    assert checkpoint["callbacks"]["TimeBudget"]["plan"]["max_epochs"] == 5


@pytest.mark.parametrize(
    ("epoch_seconds", "epochs"),
    [
        # The machine slows to 90 s an epoch after epoch 0. After epoch 1 (at 135 s) the median
        # of 45 and 90 s leaves room for 2 more in 0.98 × 177 s: 4 epochs. After epoch 2 (at
        # 225 s) the median is 90 s and none fits in 0.98 × 87 s: the run stops at 3.
        ([45.0, 90.0, 90.0], 3),
        # One slow epoch among steady ones: the median of the latest three stays at 45 s and
        # the plan holds (judged by the 60-s epoch alone, 3 more would not fit in 0.98 × 162 s).
        ([45.0, 45.0, 60.0, 45.0, 45.0, 45.0], 6),
        # The machine speeds up to 20 s an epoch: more would fit, but later checks only
        # shorten, so the run keeps its 6 epochs (and its schedule).
        ([45.0, 20.0, 20.0, 20.0, 20.0, 20.0], 6),
    ],
)
def test_later_epochs_shorten_a_plan_that_no_longer_fits_and_never_lengthen_it(compose_train, tmp_path, monkeypatch, epoch_seconds, epochs):
    monkeypatch.setattr(budget, "measure_step_times", lambda module, **options: StepTimes(full=20.0, low=10.0, validation=5.0))
    epoch_ends = [sum(epoch_seconds[: index + 1]) for index in range(len(epoch_seconds))]
    ticks = iter([0.0, 0.0, 0.0, *epoch_ends] + [1000.0] * 20)
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    # 5.2 min, all epochs at full resolution (45 s estimated): first plan 6 epochs (270 s of
    # 0.88 × 312 s); after epoch 0 on time, 0.98 × 267 s left holds exactly the 5 more.
    train(budget_run(compose_train, tmp_path, 5.2, low_resolution_epochs=0, scheduler="warmup_cosine"))
    run = tmp_path / "run"
    assert [epoch for epoch, _ in read_metrics_csv(run / "metrics" / "metrics.csv")["val/score"]] == list(range(epochs))
    assert OmegaConf.load(run / "config.yaml").trainer.max_epochs == epochs
    schedule = read_checkpoint(run / "checkpoints" / "last.ckpt")["lr_schedulers"][0]
    assert schedule["total_steps"] == schedule["last_epoch"] == 2 * epochs  # the decay ends with the run


@pytest.mark.parametrize("value", ["abc", 0, -5, True, float("nan")])
def test_a_budget_that_is_no_positive_number_is_one_line(value):
    with pytest.raises(SaltError, match="budget_minutes=.*must be a positive number of minutes"):
        TimeBudget(value)


def test_limits_on_batches_follow_lightning():
    assert limited(175, None) == 175 and limited(175, 1.0) == 175
    assert limited(175, 10) == 10 and limited(5, 10) == 5
    assert limited(175, 0.5) == 87 and limited(3, 0.1) == 1 and limited(175, 0.0) == 0


def test_measuring_leaves_the_network_and_random_streams_as_they_were(compose_train):
    cfg = compose_train()
    module = SaltSegmentation(net=instantiate(cfg.model), loss=instantiate(cfg.loss), optimizer=instantiate(cfg.optimizer), channels_last=True)
    before = {name: value.clone() for name, value in module.net.state_dict().items()}
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    times = measure_step_times(
        module, batch_size=2, channels=3, crop_size=64, device=torch.device("cpu"),
        train_context=nullcontext, val_context=nullcontext, warmup=1, steps=2,
    )
    assert torch.equal(torch.rand(4), expected)
    assert all(torch.equal(before[name], value) for name, value in module.net.state_dict().items())
    assert 0 < times.low and 0 < times.full and 0 < times.validation


def test_the_plan_sets_the_epochs_is_recorded_and_a_resumed_run_keeps_it(compose_train, tmp_path, monkeypatch):
    measured = []

    def fake_times(module, **options):
        measured.append(options["batch_size"])
        return StepTimes(full=20.0, low=10.0, validation=5.0)

    monkeypatch.setattr(budget, "measure_step_times", fake_times)
    # 2.2 minutes × 0.88 = 116 s: 3 epochs (2 at half resolution) take 2 × 25 + 45 = 95 s, 4 take 140.
    stop_after_first = lambda self, trainer, module: setattr(trainer, "should_stop", True)  # noqa: E731
    monkeypatch.setattr(TimeBudget, "on_train_epoch_end", stop_after_first, raising=False)
    train(budget_run(compose_train, tmp_path, 2.2))
    run = tmp_path / "run"
    config = OmegaConf.load(run / "config.yaml")
    assert (config.trainer.max_epochs, config.low_resolution_epochs) == (3, 2)
    checkpoint = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 0 and checkpoint["hyper_parameters"]["low_resolution_epochs"] == 2
    assert checkpoint["callbacks"]["TimeBudget"]["plan"]["max_epochs"] == 3

    # Resumed with another budget, the run keeps the length its schedule was built for.
    monkeypatch.undo()
    monkeypatch.setattr(budget, "measure_step_times", fake_times)
    measured.clear()
    train(budget_run(compose_train, tmp_path, 50))
    assert measured == []
    assert [epoch for epoch, _ in read_metrics_csv(run / "metrics" / "metrics.csv")["val/score"]] == [0, 1, 2]
    assert OmegaConf.load(run / "config.yaml").trainer.max_epochs == 3


def test_epochs_without_validation_are_planned_without_it(compose_train, tmp_path, monkeypatch):
    monkeypatch.setattr(budget, "measure_step_times", lambda module, **options: StepTimes(full=20.0, low=10.0, validation=5.0))
    stop_after_first = lambda self, trainer, module: setattr(trainer, "should_stop", True)  # noqa: E731
    monkeypatch.setattr(TimeBudget, "on_train_epoch_end", stop_after_first, raising=False)
    # All epochs at half resolution, 2 minutes × 0.88 = 105.6 s: validated, an epoch takes
    # 2 × 10 + 5 = 25 s (4 fit); without validation 20 s (5 fit).
    for validate, epochs in (("true", 4), ("false", 5)):
        run = tmp_path / validate
        extra = (f"validate_low_resolution={validate}", "callbacks.early_stopping=null")
        train(budget_run(compose_train, run, 2.0, 4, "warmup_cosine", *extra))
        config = OmegaConf.load(run / "run" / "config.yaml")
        assert (config.trainer.max_epochs, config.low_resolution_epochs) == (epochs, epochs)


def test_resuming_a_run_of_fixed_epochs_with_a_budget_is_one_line(compose_train, tmp_path):
    train(compose_train("debug=limit", "trainer.max_epochs=1", run_dir=tmp_path / "run"))
    with pytest.raises(SaltError, match="the checkpoint being resumed holds no plan"):
        train(budget_run(compose_train, tmp_path, 5))


def test_the_cpu_recipe_plans_its_hour_and_the_debug_presets_do_not(compose_train):
    assert compose_train("experiment=cpu").budget_minutes == 60
    for preset in ("limit", "overfit"):
        assert compose_train("experiment=cpu", f"debug={preset}").budget_minutes is None
    assert compose_train("experiment=cpu_stage2").budget_minutes is None
