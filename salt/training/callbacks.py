"""Callbacks that make a run readable: its training curves and validation tiles as pictures."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402

from salt.files import atomic_file, save_figure  # noqa: E402
from salt.rundir import read_metrics_csv  # noqa: E402


def plot_training_curves(series: dict[str, list[tuple[int, float]]], out: str | Path, title: str = "") -> Path:
    """Loss, score and learning rate against epoch, in three panels; written atomically."""
    panels = [
        ("loss", [name for name in series if name.endswith("/loss")]),
        ("competition score", [name for name in series if name.startswith("val/score")]),
        ("learning rate", [name for name in series if name.startswith("lr")]),
    ]
    panels = [(label, names) for label, names in panels if names]
    # One epoch axis for all panels: a run that validates only its last epochs
    # (validate_low_resolution=false) shows where its scores lie in the whole run.
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6), squeeze=False, sharex=True)
    for ax, (label, names) in zip(axes[0], panels):
        for name in sorted(names):
            epochs, values = zip(*series[name])
            ax.plot(epochs, values, label=name, marker="." if len(epochs) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if label == "learning rate":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, out, title)


class TrainingCurves(pl.Callback):
    """Redraws `training_curves.png` in the run dir from the CSV logger after every validation,
    and once more when fitting ends (the last epoch's metrics reach the logger only after the
    validation hooks have run)."""

    def __init__(self, filename: str = "training_curves.png", every_n_epochs: int = 1) -> None:
        self.filename = filename
        # Drawing takes about half a second: on a GPU whose epochs take seconds, draw less often.
        self.every_n_epochs = max(1, int(every_n_epochs))
        self._validated = -1  # the latest epoch drawn after its validation

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = trainer.current_epoch
            if trainer.current_epoch % self.every_n_epochs == 0:
                self._draw(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # An epoch without validation (validate_low_resolution=false) is drawn when the next
        # one starts, once its training metrics have reached the logger.
        previous = trainer.current_epoch - 1
        if previous >= 0 and previous != self._validated and previous % self.every_n_epochs == 0:
            self._draw(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer)

    def _draw(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        csv_logger = next((lg for lg in trainer.loggers if isinstance(lg, pl.loggers.CSVLogger)), None)
        if csv_logger is None:
            return
        csv_logger.save()  # flush this epoch's rows
        metrics = Path(csv_logger.log_dir) / "metrics.csv"
        if metrics.is_file():
            plot_training_curves(read_metrics_csv(metrics), Path(trainer.default_root_dir) / self.filename, title=Path(trainer.default_root_dir).as_posix())


class EpochMinutes(pl.Callback):
    """Logs `time/epoch_minutes`: the wall time from the end of one epoch to the end of the
    next (training steps, validation and the previous epoch's checkpoints), so a run's curve
    can be read against the clock and a time budget's plan checked against what happened."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        now = time.perf_counter()
        pl_module.log("time/epoch_minutes", (now - self._last) / 60)
        self._last = now


def overlay(image: np.ndarray, truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """(H, W) gray image in [0, 1] and bool masks -> (H, W, 3) uint8 with the truth tinted
    green and the prediction magenta (where both, the tints mix)."""
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    green, magenta = np.array([0.1, 0.9, 0.2]), np.array([0.95, 0.1, 0.85])
    rgb[truth] = 0.55 * rgb[truth] + 0.45 * green
    rgb[prediction] = 0.55 * rgb[prediction] + 0.45 * magenta
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


class ValidationTiles(pl.Callback):
    """Every `every_n_epochs`, a panel of validation tiles with truth (green) and prediction
    (magenta): saved as `validation_tiles.png` in the run dir and sent to W&B when it logs."""

    def __init__(self, every_n_epochs: int = 5, tiles: int = 16) -> None:
        self.every_n_epochs = every_n_epochs
        self.tiles = tiles
        self._batch: dict | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        # The first `tiles` validation tiles (the loader does not shuffle, so the same ones
        # every epoch), gathered over as many batches as that takes.
        if trainer.sanity_checking or outputs is None:
            return
        if batch_idx == 0:
            self._batch = {"image": [], "truth": [], "prediction": []}
        if self._batch is None:
            return
        n = min(self.tiles - sum(len(part) for part in self._batch["image"]), len(batch["image"]))
        if n <= 0:
            return
        geometry = pl_module.geometry
        self._batch["image"].append(geometry.uncrop(batch["image"][:n, 0]).float().cpu().numpy())
        self._batch["truth"].append((geometry.uncrop(batch["mask"][:n, 0]) > 0.5).cpu().numpy())
        self._batch["prediction"].append(outputs["masks"][:n].cpu().numpy())

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self._batch and self._batch["image"]) or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if trainer.current_epoch % self.every_n_epochs and trainer.current_epoch != trainer.max_epochs - 1:
            return
        tiles = {key: np.concatenate(parts) for key, parts in self._batch.items()}
        images = [overlay(*(tiles[k][i] for k in ("image", "truth", "prediction"))) for i in range(len(tiles["image"]))]
        columns = 8
        rows = -(-len(images) // columns)
        blank = np.zeros_like(images[0])
        images += [blank] * (rows * columns - len(images))
        panel = np.concatenate([np.concatenate(images[r * columns : (r + 1) * columns], axis=1) for r in range(rows)], axis=0)
        out = Path(trainer.default_root_dir) / "validation_tiles.png"
        with atomic_file(out) as tmp:
            plt.imsave(tmp, panel)
        for logger in trainer.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.log_image(
                    key="val/tiles",
                    images=[panel],
                    caption=[f"epoch {trainer.current_epoch}: truth green, prediction magenta"],
                    step=trainer.global_step,
                )
        self._batch = None
