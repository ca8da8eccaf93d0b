"""Trained runs: finding them from globs, rebuilding their networks, refusing bad checkpoints.

A run directory is what ``python train.py`` writes: ``config.yaml`` (the fully resolved
training config) and ``checkpoints/{best,last}.ckpt``. The config, not the checkpoint,
says how to rebuild the network and how its inputs were made (padding, channels,
histogram matching), so every run of an ensemble may differ in all of these.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from salt import rundir
from salt.data.channels import check_channels
from salt.data.prepared import PaddingSettings
from salt.errors import SaltError
from salt.folds import FoldSettings
from salt.training.checkpoints import (
    CheckpointError,
    input_mismatch,
    input_record,
    network_state,
    read_checkpoint,
    weight_mismatch,
)

CHECKPOINTS = ("best", "last")


@dataclass(frozen=True)
class Run:
    """One trained model: its directory, resolved training config and chosen checkpoint."""

    dir: Path
    config: DictConfig
    checkpoint: Path

    @property
    def name(self) -> str:
        """``<name>/<encoder>/fold_<k>``-style label: the last three parts of the directory."""
        return "/".join(self.dir.resolve().parts[-3:])

    @property
    def fold(self) -> int:
        return int(self.config.fold)

    @property
    def folds(self) -> FoldSettings:
        return FoldSettings.from_config(self.config.folds)

    @property
    def data_dir(self) -> Path:
        return Path(self.config.data.dir)

    @property
    def padding(self) -> PaddingSettings:
        return PaddingSettings.from_config(self.config.data.padding)

    @property
    def histogram_match(self) -> bool:
        return bool(self.config.data.get("histogram_match", False))

    @property
    def channels(self) -> list[str]:
        return check_channels(self.config.data.channels)

    @property
    def encoder(self) -> str:
        return str(self.config.model.encoder.name)


def find_runs(patterns: Sequence[str | os.PathLike], checkpoint: str = "best") -> list[Run]:
    """The runs named by `patterns`, in order, each once.

    Each pattern (shell glob allowed) may name a run directory (holding ``config.yaml``),
    a directory above run directories (every run below it is taken, e.g.
    ``outputs/argus_stage2/se_resnext50`` for all its folds) or a ``.ckpt`` file inside a
    run's ``checkpoints/`` (that checkpoint instead of `checkpoint`).

    Args:
        checkpoint: "best" or "last", the file taken from each run directory.

    Raises:
        SaltError: no pattern given, a pattern that matches no run, an unknown
            `checkpoint`, or a run without that checkpoint.
    """
    if checkpoint not in CHECKPOINTS:
        raise SaltError(f"checkpoint={checkpoint!r}: must be one of {', '.join(CHECKPOINTS)}")
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    if not patterns:
        raise SaltError("runs: empty; name at least one run directory, e.g. runs=[outputs/demo/tiny]")
    runs: dict[tuple[Path, Path], Run] = {}
    for pattern in patterns:
        found = list(_runs_of_pattern(str(pattern), checkpoint))
        if not found:
            raise SaltError(
                f"runs: {pattern} matches no trained run (a run directory holds config.yaml and "
                f"checkpoints/{checkpoint}.ckpt, as python train.py writes)"
            )
        for run in found:
            runs.setdefault((run.dir.resolve(), run.checkpoint.resolve()), run)
    return list(runs.values())


def _runs_of_pattern(pattern: str, checkpoint: str) -> Iterable[Run]:
    matches = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).exists() else [])
    for match in map(Path, matches):
        if match.is_file():
            if match.suffix != ".ckpt":
                raise SaltError(f"runs: {match} is a file but not a .ckpt checkpoint")
            yield _run(match.parent.parent if match.parent.name == rundir.CHECKPOINTS else match.parent, match)
        elif (match / rundir.CONFIG).is_file():
            yield _run(match, rundir.checkpoint_path(match, checkpoint))
        elif match.is_dir():
            for config in sorted(match.rglob(rundir.CONFIG)):
                if (config.parent / rundir.CHECKPOINTS).is_dir():
                    yield _run(config.parent, rundir.checkpoint_path(config.parent, checkpoint))


def _run(run_dir: Path, checkpoint: Path) -> Run:
    config_path = run_dir / rundir.CONFIG
    if not config_path.is_file():
        raise SaltError(f"run {run_dir}: no config.yaml beside the checkpoint (was it written by train.py?)")
    if not checkpoint.is_file():
        raise CheckpointError(f"run {run_dir}: {checkpoint.name} not found in {checkpoint.parent}")
    config = OmegaConf.load(config_path)
    for key in ("data", "folds", "fold", "model"):
        if key not in config:
            raise SaltError(f"{config_path}: no `{key}` block; not a training run's resolved config")
    return Run(dir=run_dir, config=config, checkpoint=checkpoint)


def build_network(run: Run) -> nn.Module:
    """The run's network as its config describes it, random weights, nothing downloaded."""
    model_cfg = OmegaConf.create(OmegaConf.to_container(run.config.model, resolve=True))
    with open_dict(model_cfg):
        # The checkpoint holds every weight; fetching ImageNet weights would only cost time
        # (and fail offline).
        model_cfg.encoder.pretrained = False
    return hydra.utils.instantiate(model_cfg)


def load_network(run: Run) -> nn.Module:
    """The run's network with its checkpoint's weights, in eval mode, on the CPU.

    Raises:
        CheckpointError: the file is not a readable training checkpoint, holds non-finite
            weights, was trained on other inputs (channels, padding, histogram matching)
            than the run's config.yaml prepares, or its weights do not fit the network
            the config describes (names the first mismatches).
    """
    checkpoint = read_checkpoint(run.checkpoint)
    config_path = run.dir / rundir.CONFIG
    expected_inputs = input_record(run.channels, run.config.data.padding, run.histogram_match)
    inputs_differ = input_mismatch(checkpoint.get("inputs"), expected_inputs)
    if inputs_differ:
        raise CheckpointError(f"checkpoint {run.checkpoint}: trained on other inputs than {config_path} prepares ({inputs_differ})")
    net = build_network(run)
    state = network_state(run.checkpoint, checkpoint)
    mismatch = weight_mismatch(net.state_dict(), state)
    if mismatch:
        raise CheckpointError(
            f"checkpoint {run.checkpoint}: does not fit the network of {config_path} "
            f"({run.config.model._target_}, encoder {run.encoder}): {mismatch}"
        )
    net.load_state_dict(state)
    return net.eval()
