"""`train(cfg)`: build everything from a composed config and fit one fold."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from salt.errors import SaltError
from salt.files import atomic_file
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


def resume_checkpoint(cfg: DictConfig, out: Path) -> str | None:
    """The checkpoint to resume from, per `cfg.resume` (auto | true | false)."""
    last = out / "checkpoints" / "last.ckpt"
    mode = str(cfg.resume).lower()
    if mode not in ("auto", "true", "false"):
        raise SaltError(f"resume={cfg.resume}: must be auto, true or false")
    if mode == "true" and not last.is_file():
        raise SaltError(f"resume=true but {last} does not exist")
    return str(last) if mode != "false" and last.is_file() else None


def load_initial_weights(module: SaltSegmentation, path: str) -> None:
    """Start from another run's weights (stage 2 from stage 1), not its optimiser or epoch."""
    checkpoint = Path(path)
    if not checkpoint.is_file():
        raise SaltError(f"init_checkpoint {checkpoint}: not found (train that stage first, or set init_checkpoint=PATH)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    missing, unexpected = module.load_state_dict(state, strict=False)
    mismatch = [k for k in missing + unexpected if k.startswith("net.")]
    if mismatch:
        raise SaltError(f"init_checkpoint {checkpoint}: its network does not match this config (e.g. {mismatch[0]})")


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
    with open_dict(cfg):
        # The data's channel list decides how many channels the encoder takes.
        cfg.encoder.in_chans = len(cfg.data.channels)
    with atomic_file(out / "config.yaml") as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))

    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    compile_net = bool(trainer_cfg.pop("compile", False))
    if compile_net:
        accelerator = str(trainer_cfg.get("accelerator", "auto"))
        on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
        check_compile("cuda" if on_gpu else "cpu")

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
    )
    ckpt_path = resume_checkpoint(cfg, out)
    if cfg.get("init_checkpoint") and ckpt_path is None:
        load_initial_weights(module, cfg.init_checkpoint)

    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
        resumed_step = torch.load(ckpt_path, map_location="cpu", weights_only=True)["global_step"]
        for lg in loggers:
            if isinstance(lg, CSVLogger):
                lg.keep_history(before_step=resumed_step)  # before anything opens its writer
    for lg in loggers:
        # The whole resolved config, so a dashboard can group and filter runs by any key.
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer: pl.Trainer = hydra.utils.instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    for lg in loggers:
        if isinstance(lg, pl.loggers.WandbLogger):
            lg.experiment.finish()
    return metrics
