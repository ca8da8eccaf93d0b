"""`train(cfg)`: build everything from a composed config and fit one fold."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from salt import rundir
from salt.data.prepared import PaddingSettings  # noqa: F401  registers data/padding/schema, composed by train.yaml
from salt.errors import SaltError, cause_in_chain
from salt.files import atomic_file
from salt.mosaic.build import AssemblySettings  # noqa: F401  registers assembly/schema (folds=mosaic)
from salt.precision import trainer_device, trainer_precision
from salt.training.budget import EpochPlan, TimeBudget
from salt.training.checkpoints import (
    AtomicCheckpointIO,
    CheckpointError,
    input_mismatch,
    input_record,
    network_state,
    read_checkpoint,
    weight_mismatch,
)
from salt.training.csv_logger import CSVLogger
from salt.training.module import SaltSegmentation

log = logging.getLogger(__name__)


def run_dir(cfg: DictConfig) -> Path:
    """The run's directory: Hydra's output dir when composed by Hydra, else `cfg.paths.run_dir`."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.run_dir)


def check_fold(cfg: DictConfig) -> None:
    count = int(cfg.folds.k)
    if not 0 <= int(cfg.fold) < count:
        raise SaltError(f"fold={cfg.fold}: out of range, {cfg.folds.kind} folds are numbered 0 to {count - 1}")


def resume_checkpoint(cfg: DictConfig, out: Path, module: SaltSegmentation) -> tuple[str, int] | None:
    """The checkpoint to resume from and its global step, per `cfg.resume` (auto | true |
    false), checked before the run writes anything.

    An unreadable or truncated ``last.ckpt`` is set aside (renamed, never deleted): with
    resume=auto the run starts over with a warning, with resume=true it stops. A checkpoint
    whose network or inputs differ from this config stops the run with one line.
    """
    last = rundir.checkpoint_path(out, "last")
    mode = str(cfg.resume).lower()
    if mode not in ("auto", "true", "false"):
        raise SaltError(f"resume={cfg.resume}: must be auto, true or false")
    if mode == "true" and not last.is_file():
        raise SaltError(f"resume=true but {last} does not exist")
    if mode == "false" or not last.is_file():
        return None
    try:
        checkpoint = read_checkpoint(last)
    except CheckpointError as error:
        aside = set_aside(last)
        if mode == "true":
            raise SaltError(f"resume=true: {error}; set aside as {aside.name}") from None
        log.warning("%s; set aside as %s, starting the run over", error, aside.name)
        return None
    problem = input_mismatch(checkpoint.get("inputs"), module.hparams.inputs) if module.hparams.inputs else None
    if problem is None:
        problem = weight_mismatch(module.net.state_dict(), network_state(last, checkpoint))
    if problem:
        raise SaltError(
            f"resume from {last}: the checkpoint does not fit this config ({problem}); nothing was changed. "
            "Give the run another name or variant, or resume=false to start it over"
        )
    return str(last), int(checkpoint.get("global_step", 0))


def set_aside(path: Path) -> Path:
    """Rename an unusable file to ``<name>.unreadable[-N]`` beside it; returns the new path."""
    aside = path.with_name(f"{path.name}.unreadable")
    number = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.unreadable-{number}")
        number += 1
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        pass  # another rank of a multi-GPU run set it aside first
    return aside


def load_initial_weights(module: SaltSegmentation, path: str) -> None:
    """Start from another run's weights (stage 2 from stage 1), not its optimiser or epoch."""
    checkpoint = Path(path)
    if not checkpoint.exists():
        raise SaltError(f"init_checkpoint {checkpoint}: not found (train that stage first, or set init_checkpoint=PATH)")
    state = network_state(checkpoint)  # CheckpointError: unreadable, truncated, non-finite
    problem = weight_mismatch(module.net.state_dict(), state)
    if problem:
        raise SaltError(f"init_checkpoint {checkpoint}: its network does not match this config ({problem})")
    module.net.load_state_dict(state)


class WriteRunRecord(pl.Callback):
    """Write the run's resolved config.yaml and validation_ids.txt when training starts,
    after the checkpoint (if any) has been restored: a run that fails before training
    leaves the previous record."""

    def __init__(self, cfg: DictConfig, out: Path) -> None:
        # Resolved here: `${hydra:...}` values resolve only in the process Hydra started, not
        # in the ranks a multi-process strategy spawns.
        self.cfg, self.out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)), out
        self.fold = int(cfg.fold)
        self.written = False

    def record_plan(self, plan: EpochPlan) -> None:
        """A time budget's epochs in place of the configured ones; the record is rewritten
        when the run re-plans after writing it."""
        self.cfg.trainer.max_epochs = plan.max_epochs
        self.cfg.low_resolution_epochs = plan.low_resolution_epochs
        if self.written:
            self.write_config()

    def write_config(self) -> None:
        with atomic_file(self.out / rundir.CONFIG) as tmp:
            tmp.write_text(OmegaConf.to_yaml(self.cfg))
        self.written = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self.write_config()
        data = trainer.datamodule
        if data is not None and getattr(data, "fold_fingerprint", None) is not None:
            rundir.write_validation_ids(self.out, data.validation_ids.tolist(), fold=self.fold, fingerprint=data.fold_fingerprint)


def check_compile(device: str) -> None:
    """Stop with one line where `trainer.compile=true` cannot work."""
    if not hasattr(torch, "compile"):
        raise SaltError(f"trainer.compile=true: this torch {torch.__version__} has no torch.compile")
    if device == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise SaltError("trainer.compile=true: torch.compile on a GPU needs triton, which is not installed")
    elif not any(shutil.which(cc) for cc in ("cc", "gcc", "clang", "g++")):
        raise SaltError("trainer.compile=true: torch.compile on a CPU needs a C++ compiler (none on PATH)")


def validate_low_resolution(cfg: DictConfig) -> bool:
    """`validate_low_resolution`, refused with one line where a skipped validation would
    break the run: early stopping and a plateau schedule read val/score after every epoch."""
    value = cfg.get("validate_low_resolution", True)
    if not isinstance(value, bool):
        raise SaltError(f"validate_low_resolution={value!r}: must be true or false")
    if value or not int(cfg.get("low_resolution_epochs", 0)):
        return value
    for key, callback in (cfg.get("callbacks") or {}).items():
        if callback is not None and str(callback.get("_target_", "")).endswith("EarlyStopping"):
            raise SaltError(
                f"validate_low_resolution=false: callbacks.{key} (early stopping) reads val/score after every epoch, "
                f"which the half-resolution epochs would not compute; set callbacks.{key}=null"
            )
    if "ReduceLROnPlateau" in str((cfg.get("scheduler") or {}).get("_target_", "")):
        raise SaltError(
            "validate_low_resolution=false: the plateau schedule reads val/score after every epoch, which the "
            "half-resolution epochs would not compute; choose another scheduler (e.g. scheduler=warmup_cosine)"
        )
    return value


def full_resolution_loss(cfg: DictConfig) -> torch.nn.Module | None:
    """`full_resolution_loss_weights` merged over `loss.weights`: the loss of the
    full-resolution epochs, or None where the key is null."""
    weights = cfg.get("full_resolution_loss_weights")
    if weights is None:
        return None
    if not isinstance(weights, Mapping):
        raise SaltError(f"full_resolution_loss_weights={weights}: must be a mapping of loss terms to weights, e.g. {{lovasz: 1.0, bce: 0.1}}")
    merged = {**OmegaConf.to_container(cfg.loss.weights, resolve=True), **OmegaConf.to_container(weights, resolve=True)}
    try:
        return hydra.utils.instantiate(cfg.loss, weights=merged)
    except Exception as error:  # the loss's own one-line error, wrapped by Hydra
        cause = cause_in_chain(error, lambda e: isinstance(e, SaltError))
        if cause is not None:
            raise SaltError(f"full_resolution_loss_weights: {cause}") from None
        raise


def scheduler_factory(cfg: DictConfig) -> tuple[Callable[..., object] | None, str]:
    """The `scheduler` block as a partial taking the optimiser, and how often it steps
    (`scheduler.interval`: epoch, the default, or step)."""
    if not cfg.get("scheduler"):
        return None, "epoch"
    settings = OmegaConf.to_container(cfg.scheduler, resolve=True)
    interval = settings.pop("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise SaltError(f"scheduler.interval={interval}: must be epoch or step")
    return hydra.utils.instantiate(settings), interval


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit one fold as configured; returns the final metrics (val/score_best among them)."""
    check_fold(cfg)
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if str(trainer_cfg.get("precision")) == "auto":
        trainer_cfg["precision"] = trainer_precision("auto", accelerator)
        log.info("trainer.precision=auto: %s on this %s", trainer_cfg["precision"], trainer_device(accelerator))
        with open_dict(cfg):  # the run's record says what it trained with
            cfg.trainer.precision = trainer_cfg["precision"]
    compile_net = bool(trainer_cfg.pop("compile", False))
    if compile_net:
        check_compile(trainer_device(accelerator))

    datamodule = hydra.utils.instantiate(
        cfg.data, fold=cfg.fold, folds=cfg.folds, cache_dir=cfg.paths.cache_dir, seed=cfg.seed, _recursive_=False
    )
    scheduler, interval = scheduler_factory(cfg)
    module = SaltSegmentation(
        net=hydra.utils.instantiate(cfg.model),
        loss=hydra.utils.instantiate(cfg.loss),
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        scheduler=scheduler,
        scheduler_interval=interval,
        geometry=datamodule.geometry,
        mask_threshold=cfg.thresholds.mask,
        empty_threshold=cfg.thresholds.empty,
        channels_last=cfg.channels_last,
        compile=compile_net,
        inputs=input_record(cfg.data.channels, cfg.data.padding, cfg.data.get("histogram_match", False)),
        low_resolution_epochs=int(cfg.get("low_resolution_epochs", 0)),
        low_resolution=str(cfg.get("low_resolution", "downsample")),
        full_resolution_loss=full_resolution_loss(cfg),
        validate_low_resolution=validate_low_resolution(cfg),
        seed=int(cfg.seed),
    )
    resume = resume_checkpoint(cfg, out, module)
    ckpt_path = resume[0] if resume else None
    if cfg.get("init_checkpoint") and ckpt_path is None:
        load_initial_weights(module, cfg.init_checkpoint)

    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    record = WriteRunRecord(cfg, out)
    if cfg.get("budget_minutes") is not None:

        def on_plan(plan: EpochPlan) -> None:
            record.record_plan(plan)
            for lg in loggers:  # the dashboards show the epochs the run trains, not the configured ones
                lg.log_hyperparams(OmegaConf.to_container(record.cfg))

        callbacks.append(TimeBudget(cfg.budget_minutes, resuming=resume is not None, on_plan=on_plan))
    callbacks.append(record)
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    if resume:
        log.info("resuming from %s", ckpt_path)
        for lg in loggers:
            if isinstance(lg, CSVLogger):
                lg.keep_history(before_step=resume[1])  # before anything opens its writer
    for lg in loggers:
        # The whole resolved config, so a dashboard can group and filter runs by any key.
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer: pl.Trainer = hydra.utils.instantiate(
        trainer_cfg, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    for lg in loggers:
        if isinstance(lg, pl.loggers.WandbLogger):
            lg.experiment.finish()
    return metrics
