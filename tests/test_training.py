import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from salt.errors import SaltError
from salt.rundir import read_metrics_csv
from salt.training.run import train

from conftest import FAST_TRAINING, REPO

CONF = REPO / "conf"


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group, option",
    [(group, option) for group in ("encoder", "model", "loss", "optimizer", "scheduler", "trainer", "logger", "callbacks", "experiment", "debug", "data", "folds") for option in options(group)],
)
def test_every_config_option_composes_and_resolves(compose_train, group, option):
    cfg = compose_train(f"{group}={option}", fast=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["model"]["encoder"] == resolved["encoder"]
    assert resolved["hydra"]["runtime"]["choices"][group] == option


def test_fast_dev_run_of_the_default_config(compose_train):
    cfg = compose_train("debug=fast_dev_run")
    metrics = train(cfg)
    assert "train/loss" in metrics and torch.isfinite(torch.tensor(metrics["train/loss"]))


@pytest.mark.parametrize(
    "experiment, extra",
    # The small test dataset has too few mosaics for 6 non-empty folds.
    [
        ("argus_stage1", ()),
        ("argus_mosaic", ("folds.k=2",)),
        ("demo", ()),
        ("cpu", ()),
        ("speedrun", ("trainer=cpu", "trainer.compile=false")),
    ],
)
def test_every_experiment_runs_fast_dev_run(compose_train, experiment, extra):
    cfg = compose_train(f"experiment={experiment}", "debug=fast_dev_run", *extra)
    assert cfg.name == experiment
    metrics = train(cfg)
    assert "val/score" in metrics


@pytest.mark.parametrize(
    ("stage1", "stage2", "scheduler", "lr"),
    [("argus_stage1", "argus_stage2", "CosineAnnealingWarmRestarts", 0.005), ("cpu", "cpu_stage2", "warmup_cosine", 3e-4)],
)
def test_stage2_starts_from_stage1_best_checkpoint_found_by_convention(compose_train, tmp_path, stage1, stage2, scheduler, lr):
    stage1_dir = tmp_path / "outputs" / stage1 / "tiny" / "fold_0"
    train(compose_train(f"experiment={stage1}", "debug=limit", "trainer.max_epochs=1", run_dir=stage1_dir))
    best = stage1_dir / "checkpoints" / "best.ckpt"
    assert best.is_file()
    cfg = compose_train(f"experiment={stage2}", "debug=fast_dev_run")
    assert Path(cfg.init_checkpoint) == best
    assert cfg.scheduler._target_.endswith(scheduler) and cfg.optimizer.lr == lr
    train(cfg)


def test_stage2_without_stage1_says_what_to_do(compose_train):
    cfg = compose_train("experiment=argus_stage2", "debug=fast_dev_run")
    with pytest.raises(SaltError, match="init_checkpoint .*best.ckpt: not found \\(train that stage first"):
        train(cfg)


def test_fold_out_of_range_is_one_clear_error(compose_train):
    with pytest.raises(SaltError, match="fold=5: out of range, random folds are numbered 0 to 4"):
        train(compose_train("fold=5"))


def test_run_dir_holds_config_checkpoints_metrics_and_curves(compose_train, tmp_path):
    cfg = compose_train("debug=limit", "trainer.max_epochs=2")
    train(cfg)
    run = tmp_path / "run"
    assert OmegaConf.load(run / "config.yaml").encoder.name == "test_resnet"
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    series = read_metrics_csv(run / "metrics" / "metrics.csv")
    assert [epoch for epoch, _ in series["val/score"]] == [0, 1]
    assert [epoch for epoch, _ in series["lr-SGD"]] == [0, 1]  # the curves' learning-rate panel
    assert (run / "training_curves.png").stat().st_size > 10_000


def test_metrics_csv_puts_the_learning_rate_logged_by_step_on_its_epoch(tmp_path):
    # As Lightning's CSVLogger writes a run of 3 steps an epoch: the learning-rate monitor's
    # rows carry a step and no epoch; the last one belongs to the epoch in progress.
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,lr-AdamW,step,train/loss,val/score\n"
        ",0.1,0,,\n"
        "0,,2,,0.5\n"
        "0,,2,1.5,\n"
        ",0.05,3,,\n"
        "1,,5,,0.6\n"
        "1,,5,1.2,\n"
        ",0.01,6,,\n"
    )
    series = read_metrics_csv(csv)
    assert series["lr-AdamW"] == [(0, 0.1), (1, 0.05), (2, 0.01)]
    assert series["val/score"] == [(0, 0.5), (1, 0.6)] and series["train/loss"] == [(0, 1.5), (1, 1.2)]


def test_same_seed_same_config_same_score(compose_train, tmp_path):
    # Two epochs with augmentations on: the losses are floats that any difference in the
    # crops, flips or brightness drawn would move.
    results = []
    for seed in (0, 0, 1):
        cfg = compose_train("debug=limit", "trainer.max_epochs=2", "resume=false", f"seed={seed}", run_dir=tmp_path / f"run_{len(results)}")
        metrics = train(cfg)
        results.append((float(metrics["val/score"]), float(metrics["val/loss"]), float(metrics["train/loss"])))
    assert results[0] == results[1]
    assert results[2][1:] != results[0][1:]


def train_command(out: Path, synthetic_dir: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "data=synthetic",
        f"data.dir={synthetic_dir}",
        f"paths.output_dir={out}",
        f"paths.cache_dir={cache}",
        *FAST_TRAINING,
        *extra,
    ]


def test_unknown_augment_on_is_one_line(tmp_path, synthetic_dir):
    command = train_command(tmp_path / "outputs", synthetic_dir, tmp_path / "cache", "data.augment_on=gpu")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: data.augment_on=gpu: unknown; choose from device, loader"


def test_compile_without_a_compiler_is_one_clear_error(compose_train, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SaltError, match="trainer.compile=true: torch.compile on a CPU needs a C\\+\\+ compiler"):
        train(compose_train("trainer.compile=true"))


def test_loader_path_still_trains(compose_train):
    metrics = train(compose_train("debug=fast_dev_run", "data.augment_on=loader"))
    assert "val/score" in metrics


def test_unknown_encoder_lists_the_choices(tmp_path):
    result = subprocess.run([sys.executable, "train.py", "encoder=resnet35"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "resnet34" in result.stderr and "se_resnext50" in result.stderr and "resnet35" in result.stderr


def test_wandb_logs_offline_with_config_and_metrics(compose_train, tmp_path):
    cfg = compose_train("logger=wandb", "debug=limit", "trainer.max_epochs=1")
    assert cfg.logger.wandb.offline is True and cfg.logger.wandb.group == "train" and cfg.logger.wandb.job_type == "fold_0"
    train(cfg)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # Offline runs keep config and metrics in the binary run log until `wandb sync`. W&B's
    # own service process writes it; on a loaded machine it may still be flushing.
    deadline = time.time() + 30
    while True:
        log = next(runs[0].glob("run-*.wandb")).read_bytes()
        if (b"test_resnet" in log and b"thresholds" in log and b"val/score" in log) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert b"test_resnet" in log and b"thresholds" in log and b"val/score" in log
    assert list(runs[0].rglob("media/images/val/tiles_*.png"))  # the validation tile panel


def test_half_resolution_averages_inputs_and_takes_the_majority_of_masks():
    from salt.training.module import half_resolution

    image = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.float32)[None, None]
    half = half_resolution({"image": image, "mask": mask, "id": ["a"]})
    # Block means by hand: (0 + 1 + 4 + 5) / 4 = 2.5, (2 + 3 + 6 + 7) / 4 = 4.5, ...
    assert half["image"][0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]
    # 3 of 4 salt -> salt; 1 of 4 -> not; 1 of 4 -> not; none -> not.
    assert half["mask"][0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert half["mask"].dtype == mask.dtype and half["id"] == ["a"]


def test_half_crop_cuts_each_tile_a_window_at_its_own_offset_and_the_mask_with_it():
    from salt.training.module import half_crop

    generator = torch.Generator().manual_seed(3)
    image = torch.rand(5, 2, 8, 8).contiguous(memory_format=torch.channels_last)
    mask = (torch.rand(5, 1, 8, 8) > 0.5).float()
    half = half_crop({"image": image, "mask": mask, "id": list("abcde")}, generator)
    # The offsets the generator gives, then the windows cut by plain slicing.
    rows, cols = torch.randint(0, 5, (2, 5), generator=torch.Generator().manual_seed(3))
    for tile in range(5):
        r, c = int(rows[tile]), int(cols[tile])
        assert torch.equal(half["image"][tile], image[tile, :, r : r + 4, c : c + 4])
        assert torch.equal(half["mask"][tile], mask[tile, :, r : r + 4, c : c + 4])
    assert half["image"].shape == (5, 2, 4, 4) and half["id"] == list("abcde")
    assert len({(int(r), int(c)) for r, c in zip(rows, cols)}) > 1  # not one offset for the batch


def test_half_crop_windows_cover_the_crop_uniformly_and_depend_only_on_seed_epoch_batch():
    from salt.data.device_batches import epoch_generator
    from salt.training.module import half_crop

    # A tile whose pixels hold their own row number: a window's first row is its offset.
    rows = torch.arange(8.0).reshape(1, 1, 8, 1).expand(4000, 1, 8, 8)
    batch = {"image": rows, "mask": rows}
    offsets = half_crop(batch, epoch_generator(42, 3, 7))["image"][:, 0, 0, 0]
    counts = torch.bincount(offsets.long(), minlength=5)
    assert counts[5:].sum() == 0 and counts.min() > 4000 / 5 * 0.85  # offsets 0..4, each about a fifth
    again = half_crop(batch, epoch_generator(42, 3, 7))["image"][:, 0, 0, 0]
    other = half_crop(batch, epoch_generator(42, 3, 8))["image"][:, 0, 0, 0]
    assert torch.equal(offsets, again) and not torch.equal(offsets, other)


def test_unknown_low_resolution_stops_with_one_line(compose_train):
    with pytest.raises(SaltError, match="low_resolution='blur': unknown, expected one of downsample, crop"):
        train(compose_train("low_resolution=blur", "low_resolution_epochs=1"))


@pytest.mark.parametrize("low_resolution", ["downsample", "crop"])
def test_low_resolution_epochs_train_at_half_size_then_full_and_validate_at_full(compose_train, monkeypatch, low_resolution):
    from salt.training.module import SaltSegmentation

    seen = []
    forward = SaltSegmentation.forward

    def recording(self, images):
        seen.append((self.current_epoch, self.training, images.shape[-1]))
        return forward(self, images)

    monkeypatch.setattr(SaltSegmentation, "forward", recording)
    cfg = compose_train(f"low_resolution={low_resolution}", "low_resolution_epochs=1", "trainer.max_epochs=2", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1")
    train(cfg)
    crop = cfg.data.padding.crop_size
    sizes = {(epoch, training): {size for e, t, size in seen if (e, t) == (epoch, training)} for epoch, training, _ in seen}
    assert sizes[(0, True)] == {crop // 2}
    assert sizes[(1, True)] == {crop}
    assert sizes[(0, False)] == sizes[(1, False)] == {crop}


def test_full_resolution_epochs_train_and_validate_with_their_own_loss_weights(compose_train, monkeypatch):
    from salt.losses import CompositeLoss
    from salt.training.module import SaltSegmentation

    seen, where = [], {}
    loss, forward = SaltSegmentation._loss, CompositeLoss.forward

    def in_module(self, batch, stage):
        where.update(epoch=self.current_epoch, stage=stage, sanity=self.trainer.sanity_checking)
        return loss(self, batch, stage)

    def recording(self, mask_logits, empty_logit, truth):
        if not where["sanity"]:
            seen.append((where["epoch"], where["stage"], mask_logits.shape[-1], dict(self.weights)))
        return forward(self, mask_logits, empty_logit, truth)

    monkeypatch.setattr(SaltSegmentation, "_loss", in_module)
    monkeypatch.setattr(CompositeLoss, "forward", recording)
    cfg = compose_train(
        "low_resolution_epochs=1", "trainer.max_epochs=2", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
        "loss.weights.lovasz=0.5", "loss.weights.bce=1.0", "loss.weights.empty_bce=0.25",
        "full_resolution_loss_weights={lovasz: 1.0, bce: 0.1}",
    )
    metrics = train(cfg)
    crop = cfg.data.padding.crop_size
    first = {"lovasz": 0.5, "bce": 1.0, "empty_bce": 0.25}
    full = {"lovasz": 1.0, "bce": 0.1, "empty_bce": 0.25}  # merged over loss.weights
    assert seen == [
        (0, "train", crop // 2, first), (0, "train", crop // 2, first), (0, "val", crop, first),
        (1, "train", crop, full), (1, "train", crop, full), (1, "val", crop, full),
    ]
    assert 0.0 <= metrics["val/score"] <= 1.0


@pytest.mark.parametrize(
    "value, message",
    [
        ("{dice: 1.0}", r"^full_resolution_loss_weights: loss: unknown term\(s\) dice; choose from lovasz, "),
        ("0.5", r"^full_resolution_loss_weights=0.5: must be a mapping of loss terms to weights"),
    ],
)
def test_bad_full_resolution_loss_weights_are_one_line(compose_train, value, message):
    with pytest.raises(SaltError, match=message):
        train(compose_train("low_resolution_epochs=1", f"full_resolution_loss_weights={value}"))


SKIPPED_VALIDATION = (
    "low_resolution_epochs=2", "trainer.max_epochs=3", "validate_low_resolution=false", "callbacks.early_stopping=null",
    "callbacks.validation_tiles=null", "scheduler=warmup_cosine", "model.block_dropout=0.2",
    "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
)


def test_low_resolution_epochs_can_skip_validation_and_still_checkpoint_every_epoch(compose_train, tmp_path, monkeypatch):
    from pytorch_lightning.callbacks import ModelCheckpoint

    from salt.training import callbacks
    from salt.training.module import SaltSegmentation

    validated, saved = [], []
    forward = SaltSegmentation.forward
    save = ModelCheckpoint._save_checkpoint

    def recording(self, images):
        if not self.training and not self.trainer.sanity_checking:
            validated.append(self.current_epoch)
        return forward(self, images)

    def saving(self, trainer, filepath):
        saved.append((trainer.current_epoch, Path(filepath).stem))
        return save(self, trainer, filepath)

    def drawing(series, out, title=""):
        drawn.append([epoch for epoch, _ in series.get("train/loss", [])])
        return plot(series, out, title)

    drawn = []
    plot = callbacks.plot_training_curves
    monkeypatch.setattr(SaltSegmentation, "forward", recording)
    monkeypatch.setattr(ModelCheckpoint, "_save_checkpoint", saving)
    monkeypatch.setattr(callbacks, "plot_training_curves", drawing)
    train(compose_train(*SKIPPED_VALIDATION, run_dir=tmp_path / "run"))
    assert set(validated) == {2}
    assert sorted(saved) == [(0, "last"), (1, "last"), (2, "best"), (2, "last")]
    # A run that ends at half resolution still validates its last epoch.
    validated.clear()
    train(compose_train(*SKIPPED_VALIDATION, "low_resolution_epochs=3", run_dir=tmp_path / "low"))
    assert set(validated) == {2}
    # The curves are drawn after the epochs without validation too (when the next starts).
    assert [0] in drawn and [0, 1] in drawn and drawn[-1] == [0, 1, 2]
    series = read_metrics_csv(tmp_path / "run" / "metrics" / "metrics.csv")
    assert [epoch for epoch, _ in series["val/score"]] == [2]
    assert [epoch for epoch, _ in series["train/loss"]] == [0, 1, 2]


def test_a_run_stopped_in_a_skipped_validation_epoch_resumes_exactly(compose_train, tmp_path, monkeypatch):
    from salt.training.module import SaltSegmentation

    train(compose_train(*SKIPPED_VALIDATION, run_dir=tmp_path / "uninterrupted"))
    uninterrupted = read_metrics_csv(tmp_path / "uninterrupted" / "metrics" / "metrics.csv")

    step = SaltSegmentation.training_step

    def stopping(self, batch, batch_idx):
        if self.current_epoch == 1 and batch_idx == 1:
            raise RuntimeError("stopped")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(SaltSegmentation, "training_step", stopping)
    with pytest.raises(RuntimeError, match="stopped"):
        train(compose_train(*SKIPPED_VALIDATION, run_dir=tmp_path / "run"))
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(SaltSegmentation, "training_step", step)
    train(compose_train(*SKIPPED_VALIDATION, run_dir=tmp_path / "run"))
    resumed = read_metrics_csv(tmp_path / "run" / "metrics" / "metrics.csv")
    for name in ("train/loss", "val/score", "val/loss"):
        assert resumed[name] == uninterrupted[name], name


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("validate_low_resolution=maybe",), r"^validate_low_resolution='maybe': must be true or false$"),
        (("scheduler=warmup_cosine",), r"^validate_low_resolution=false: callbacks.early_stopping \(early stopping\) reads val/score"),
        (("callbacks.early_stopping=null", "scheduler=plateau"), r"^validate_low_resolution=false: the plateau schedule reads val/score"),
    ],
)
def test_skipping_validation_where_the_run_needs_it_is_one_line(compose_train, overrides, message):
    with pytest.raises(SaltError, match=message):
        train(compose_train("low_resolution_epochs=1", "validate_low_resolution=false", *overrides))
