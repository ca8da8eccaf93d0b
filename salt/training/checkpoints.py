"""Checkpoint files: written atomically, read with one-line errors, checked before use.

A checkpoint is what ``python train.py`` saves (Lightning's dict): the network's weights
under ``state_dict`` as ``net.*``, the optimiser and loop state, and an ``inputs`` record
of how its tiles were made (channels, padding, histogram matching), so a checkpoint
carried into another run's folder, or a config edited after training, is caught before
it predicts on inputs it never saw.

Lightning itself writes a checkpoint through an fsspec transaction whose temporary file
lies in the system temp dir; when the run's folder is on another filesystem the final move
is a copy, and a full disk leaves a truncated file under the final name.
`AtomicCheckpointIO` writes beside the final name, fsyncs, and renames.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins import TorchCheckpointIO

from salt.errors import SaltError
from salt.files import atomic_file

NET_PREFIX = "net."  # SaltSegmentation keeps the network as `self.net`


class CheckpointError(SaltError):
    """A checkpoint that cannot be used: missing, unreadable, non-finite, or not the
    network (or inputs) its run's config describes."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose saves are atomic: a temporary file in the checkpoint's own
    folder, fsync'd, renamed onto the final name."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        with atomic_file(path) as tmp:
            torch.save(checkpoint, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """A Lightning checkpoint as a dict, or a `CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: {'is a directory' if path.is_dir() else 'not found'}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and torch errors alike mean "unreadable"
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(f"checkpoint {path}: cannot be read, truncated or not a checkpoint ({type(error).__name__}: {first_line})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"checkpoint {path}: holds no state_dict; not a checkpoint written by train.py")
    return checkpoint


def network_state(path: str | os.PathLike, checkpoint: dict | None = None) -> dict[str, torch.Tensor]:
    """The `net.*` weights of a checkpoint, prefix removed, all finite (`checkpoint`: the
    file already read)."""
    state = (checkpoint if checkpoint is not None else read_checkpoint(path))["state_dict"]
    weights = {key[len(NET_PREFIX) :]: value for key, value in state.items() if key.startswith(NET_PREFIX)}
    if not weights:
        raise CheckpointError(f"checkpoint {path}: no `{NET_PREFIX}*` weights; not a checkpoint written by train.py")
    check_finite(path, weights)
    return weights


def check_finite(path: str | os.PathLike, weights: Mapping[str, torch.Tensor]) -> None:
    """A `CheckpointError` naming the first weight that holds NaN or infinity (a diverged
    run predicts garbage without a word otherwise)."""
    for key, value in weights.items():
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"checkpoint {path}: weight {key} holds {bad} non-finite value(s) (NaN or inf); the run diverged")


def weight_mismatch(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps `state` from loading into a network whose state dict is `expected`, in a
    few words (None when it fits)."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [key for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    problems = []
    if reshaped:
        key = reshaped[0]
        problems.append(
            f"{len(reshaped)} weight(s) of another shape (e.g. {key}: checkpoint "
            f"{list(state[key].shape)}, config {list(expected[key].shape)})"
        )
    if missing:
        problems.append(f"{len(missing)} weight(s) missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weight(s) (e.g. {unexpected[0]})")
    return "; ".join(problems) or None


def input_record(channels, padding: Mapping[str, Any], histogram_match: bool) -> dict:
    """How a run's tiles became network inputs, as stored in its checkpoints: plain values."""
    return {
        "channels": [str(name) for name in channels],
        "padding": {
            "mode": str(padding["mode"]),
            "size": int(padding["size"]),
            "crop_size": int(padding["crop_size"]),
            "mask_threshold": float(padding["mask_threshold"]),
        },
        "histogram_match": bool(histogram_match),
    }


def input_mismatch(recorded: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> str | None:
    """How the inputs a checkpoint was trained on differ from `expected` (an `input_record`),
    in a few words; None when they agree or the checkpoint predates the record."""
    if not recorded:
        return None
    differences = []
    for key in ("channels", "histogram_match"):
        if recorded.get(key) != expected[key]:
            differences.append(f"{key} {recorded.get(key)} in the checkpoint, {expected[key]} in the config")
    padding = recorded.get("padding") or {}
    for key, value in expected["padding"].items():
        theirs = padding.get(key)
        same = isinstance(value, float) and isinstance(theirs, (int, float)) and math.isclose(value, theirs)
        if theirs != value and not same:
            differences.append(f"padding.{key} {theirs} in the checkpoint, {value} in the config")
    return "; ".join(differences) or None
