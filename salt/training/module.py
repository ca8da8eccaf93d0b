"""The LightningModule: a segmentation network trained with a composite loss and
validated with the competition metric on the 101x101 tile inside each crop."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MaxMetric

from salt.data.device_batches import epoch_generator
from salt.errors import SaltError
from salt.geometry import TileGeometry
from salt.losses import CompositeLoss
from salt.metric import CompetitionScore
from salt.masks import tile_masks
from salt.models import SegmentationOutput


def half_resolution(batch: dict) -> dict:
    """A training batch at half its side: inputs averaged over 2×2 blocks, masks salt
    where most of a block is (a quarter of the pixels, so steps about 3× faster on a CPU)."""
    mask = F.avg_pool2d(batch["mask"].float(), 2) >= 0.5
    return {**batch, "image": F.avg_pool2d(batch["image"], 2), "mask": mask.to(batch["mask"].dtype)}


def half_crop(batch: dict, generator: torch.Generator) -> dict:
    """A training batch cut to half its side at its own scale: each tile's window of
    S/2 × S/2 pixels at a random offset (its own per tile, drawn from `generator`), the
    mask cut with it. As cheap as `half_resolution`, but salt, reflectors and the network's
    filters keep the size they have at full resolution."""
    image, mask = batch["image"], batch["mask"]
    count, side = len(image), image.shape[-1]
    window = side // 2
    rows, cols = torch.randint(0, side - window + 1, (2, count), generator=generator).to(image.device)
    span = torch.arange(window, device=image.device)
    tiles = torch.arange(count, device=image.device)[:, None, None]
    pixel_rows = (rows[:, None] + span)[:, :, None]
    pixel_cols = (cols[:, None] + span)[:, None, :]

    def cut(x: Tensor) -> Tensor:  # [B, C, S, S] -> [B, C, S/2, S/2]
        return x.permute(0, 2, 3, 1)[tiles, pixel_rows, pixel_cols].permute(0, 3, 1, 2)

    return {**batch, "image": cut(image), "mask": cut(mask)}


# How a low-resolution epoch makes its batches (`low_resolution` of the run config).
LOW_RESOLUTION = ("downsample", "crop")


def tile_predictions(
    output: SegmentationOutput,
    geometry: TileGeometry,
    *,
    mask_threshold: float,
    empty_threshold: float,
) -> tuple[Tensor, Tensor]:
    """Turn network output on centred crops into 101x101 tile predictions.

    Returns (probabilities [B, 101, 101] float, masks [B, 101, 101] bool), the masks by the
    rule prediction uses too (`salt.masks.tile_masks`: thresholds, empty-tile head, no
    all-salt tile).
    """
    probabilities = geometry.uncrop(torch.sigmoid(output.mask_logits.float())[:, 0])
    salt = None if output.empty_logit is None else torch.sigmoid(output.empty_logit.float())
    return probabilities, tile_masks(probabilities, salt, mask_threshold=mask_threshold, empty_threshold=empty_threshold).masks


class SaltSegmentation(pl.LightningModule):
    """Wraps a network; every hyperparameter arrives from config.

    Batches are dicts: "image" [B, C, S, S] float, "mask" [B, 1, S, S] float (S = crop size).

    Args:
        net: returns a `SegmentationOutput`.
        loss: weighted loss terms.
        optimizer: partial taking `params`.
        scheduler: partial taking `optimizer`, or None.
        scheduler_interval: "epoch" or "step".
        monitor: the metric a plateau scheduler watches.
        geometry: where the tile lies in a centred crop.
        mask_threshold, empty_threshold: binarise probabilities for the metric.
        channels_last: NHWC memory layout (faster convolutions on recent GPUs).
        compile: run the network through `torch.compile` (`trainer.compile`); the
            checkpoint keeps the plain network's weights.
        inputs: how the tiles became inputs (`salt.training.checkpoints.input_record`),
            stored in every checkpoint so prediction can refuse a checkpoint whose run
            config says otherwise.
        low_resolution_epochs: progressive resizing: the first this many epochs train on
            batches of half the side, the rest at full; validation is always at full
            resolution.
        low_resolution: how those batches are made: "downsample" (`half_resolution`: the
            whole crop at half scale) or "crop" (`half_crop`: half the crop at its scale).
        full_resolution_loss: the loss from the first full-resolution epoch on (training and
            validation), where it differs from `loss`: BCE teaches a network from scratch
            fast, the Lovász hinge optimises the IoU the metric thresholds, and the switch
            to full resolution already costs the epochs a switch of loss costs. None keeps
            `loss` throughout.
        validate_low_resolution: validate after the low-resolution epochs too. False skips
            their validation: scored at full resolution, a network still learning at half
            scale scores 0.1-0.5 where the first full epoch reaches 0.7, and on an AVX2 CPU
            the validation is a ninth of such an epoch. The run's last epoch validates
            whatever its resolution, and the last checkpoint is still written after every
            epoch (`save_on_train_epoch_end` of conf/callbacks).
        seed: seeds the windows of `half_crop` (with the epoch and the batch).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: CompositeLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., object] | None = None,
        *,
        scheduler_interval: str = "epoch",
        monitor: str = "val/score",
        geometry: TileGeometry = TileGeometry(),
        mask_threshold: float = 0.5,
        empty_threshold: float = 0.5,
        channels_last: bool = False,
        compile: bool = False,
        inputs: dict | None = None,
        low_resolution_epochs: int = 0,
        low_resolution: str = "downsample",
        full_resolution_loss: CompositeLoss | None = None,
        validate_low_resolution: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if low_resolution not in LOW_RESOLUTION:
            raise SaltError(f"low_resolution={low_resolution!r}: unknown, expected one of {', '.join(LOW_RESOLUTION)}")
        # The run's resolved config (config.yaml) is what rebuilds a model; the checkpoint
        # keeps plain values only, so it loads with torch.load(weights_only=True).
        self.save_hyperparameters(logger=False, ignore=["net", "loss", "full_resolution_loss", "optimizer", "scheduler", "geometry"])
        self.net = net
        self.loss = loss
        self.full_resolution_loss = full_resolution_loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.geometry = geometry
        self.val_score = CompetitionScore()
        self.val_score_best = MaxMetric()
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        # Kept out of the module tree (a plain attribute), so the state dict holds the
        # network's weights once, under the names prediction expects.
        self.__dict__["compiled_net"] = torch.compile(self.net) if compile else None
        self._validate_every: int | None = None  # the Trainer's check_val_every_n_epoch, as configured

    def forward(self, images: Tensor) -> SegmentationOutput:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        net = self.compiled_net if self.compiled_net is not None and self.training else self.net
        return net(images)

    def _loss(self, batch: dict, stage: str) -> tuple[Tensor, SegmentationOutput]:
        output = self(batch["image"])
        total, parts = self.loss_at(self.low_resolution_epoch)(output.mask_logits, output.empty_logit, batch["mask"])
        batch_size = len(batch["image"])
        self.log(f"{stage}/loss", total, on_step=False, on_epoch=True, prog_bar=stage == "train", batch_size=batch_size)
        for name, value in parts.items():
            self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, batch_size=batch_size)
        return total, output

    def loss_at(self, low_resolution: bool) -> CompositeLoss:
        """The loss of an epoch at half (`low_resolution`) or full resolution:
        `full_resolution_loss` for full-resolution epochs where one is set, `loss` otherwise."""
        if self.full_resolution_loss is not None and not low_resolution:
            return self.full_resolution_loss
        return self.loss

    @property
    def low_resolution_epoch(self) -> bool:
        """Whether the current epoch trains at half resolution (`low_resolution_epochs`)."""
        return self.current_epoch < self.hparams.low_resolution_epochs

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        if self.low_resolution_epoch:
            batch = self.low_resolution_batch(batch, batch_idx)
        total, _ = self._loss(batch, "train")
        return total

    def on_train_epoch_start(self) -> None:
        if self.hparams.validate_low_resolution:
            return
        # Lightning validates after epoch e when (e + 1) % check_val_every_n_epoch == 0; read
        # at every epoch, so a plan that moves the last low-resolution epoch is followed.
        if self._validate_every is None:
            self._validate_every = self.trainer.check_val_every_n_epoch
            if self._validate_every is None:
                raise SaltError(
                    "validate_low_resolution=false: needs validation by epochs (trainer.check_val_every_n_epoch), not by batches"
                )
        # The run's last epoch validates whatever its resolution: a run (or a fast_dev_run)
        # that ends at half resolution still has its score and a best checkpoint.
        max_epochs = self.trainer.max_epochs
        last = max_epochs is not None and 0 < max_epochs <= self.current_epoch + 1
        skip = self.low_resolution_epoch and not last
        self.trainer.check_val_every_n_epoch = sys.maxsize if skip else self._validate_every

    def low_resolution_batch(self, batch: dict, batch_idx: int) -> dict:
        """The batch as a low-resolution epoch trains on it (`low_resolution`)."""
        if self.hparams.low_resolution == "crop":
            # Seeded by (seed, epoch, batch, rank): a resumed run cuts the windows the
            # uninterrupted run cut, and data-parallel ranks cut different ones.
            return half_crop(batch, epoch_generator(self.hparams.seed, self.current_epoch, batch_idx, self.global_rank))
        return half_resolution(batch)

    def validation_step(self, batch: dict, batch_idx: int) -> dict:
        _, output = self._loss(batch, "val")
        probabilities, masks = tile_predictions(
            output,
            self.geometry,
            mask_threshold=self.hparams.mask_threshold,
            empty_threshold=self.hparams.empty_threshold,
        )
        truth = self.geometry.uncrop(batch["mask"][:, 0]) > 0.5
        self.val_score.update(masks, truth)
        return {"probabilities": probabilities, "masks": masks}

    def on_validation_epoch_end(self) -> None:
        score = self.val_score.compute()
        self.val_score.reset()
        self.val_score_best.update(score)
        self.log("val/score", score, prog_bar=True)
        self.log("val/score_best", self.val_score_best.compute(), prog_bar=True)

    def on_train_start(self) -> None:
        # The sanity check's validation must not count as the best score.
        self.val_score_best.reset()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Dropout draws from torch's global generator; with it saved, a run resumed from
        # this checkpoint draws what the uninterrupted run drew (batch order and
        # augmentations already depend on (seed, epoch) alone).
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()
        if self.hparams.inputs is not None:
            checkpoint["inputs"] = dict(self.hparams.inputs)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        options = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            # Schedules over the whole run (salt.training.schedules) need its length.
            options["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, **options)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor, "interval": self.hparams.scheduler_interval},
        }
