"""Parameters and output shapes of a network, as a function and as a command.

    python -m salt.models.summary                                  # resnet34 U-Net, 128×128
    python -m salt.models.summary encoder=se_resnext50 model=linknet sizes=[128,256]
    python -m salt.models.summary encoder.name=resnet26d model.hypercolumn=false

The command composes ``conf/summary.yaml`` (the same ``encoder`` and ``model`` groups as
training, with ``encoder.pretrained=false``) and takes Hydra overrides as arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from salt import CONF_DIR
from salt.errors import SaltError, exit_on_error
from salt.models.network import SegmentationNetwork


def count_parameters(module: nn.Module | None) -> int:
    """Number of scalars in ``module``'s parameters; 0 for a switched-off (None) part."""
    return 0 if module is None else sum(parameter.numel() for parameter in module.parameters())


def summarize(model: SegmentationNetwork, sizes: Sequence[int] = (128,), batch_size: int = 2) -> str:
    """A few lines: encoder, parameters per part, and the shapes of every stage for each
    square input side in ``sizes`` (run in eval mode without gradients; the model's
    training mode is restored)."""
    encoder = model.encoder
    parts = {
        "encoder": model.encoder,
        "decoder": model.decoder,
        "hypercolumn": model.hypercolumn,
        "mask head": model.mask_head,
        "empty head": model.empty_head,
    }
    counts = ", ".join(
        f"{name} {count_parameters(part):,}" if part is not None else f"{name} off" for name, part in parts.items()
    )
    lines = [
        f"{type(model).__name__} on {encoder.name} (in_chans={encoder.in_chans}, "
        f"pretrained={encoder.pretrained}, first max-pool dropped={encoder.drop_first_maxpool})",
        f"  encoder channels {list(encoder.channels)}, strides {list(encoder.reductions)}",
        f"  decoder channels {list(model.decoder.stage_channels)}, strides {list(model.decoder.stage_reductions)}",
        f"  parameters: {count_parameters(model):,} ({counts})",
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for size in sizes:
                image = torch.zeros(batch_size, encoder.in_chans, size, size)
                output = model(image)
                features = encoder(image)
                stages = model.decoder(features)
                empty = "None" if output.empty_logit is None else _shape(output.empty_logit)
                lines += [
                    f"  input {_shape(image)}:",
                    f"    encoder maps  {', '.join(_shape(feature) for feature in features)}",
                    f"    decoder maps  {', '.join(_shape(stage) for stage in stages)}",
                    f"    mask_logits {_shape(output.mask_logits)}, empty_logit {empty}",
                ]
    finally:
        model.train(was_training)
    return "\n".join(lines)


def _shape(tensor: torch.Tensor) -> str:
    return "[" + ", ".join(str(side) for side in tensor.shape) + "]"


def _salt_error_cause(error: BaseException) -> SaltError | None:
    """The first `SaltError` in ``error``'s chain of causes, if any."""
    while error is not None:
        if isinstance(error, SaltError):
            return error
        error = error.__cause__
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Compose ``conf/summary.yaml`` with Hydra overrides ``argv``, build, print the summary."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(overrides):
        print(__doc__)
        return
    with exit_on_error():
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose(config_name="summary", overrides=overrides)
        except (HydraException, OmegaConfBaseException) as error:
            # Hydra lists the available options on further lines; keep them, on one line.
            message = str(error).split("Config search path")[0]
            raise SystemExit(f"error: {' '.join(message.split())}") from None
        try:
            model = instantiate(cfg.model)
        except HydraException as error:
            # Hydra wraps constructor errors in a multi-line message; ours is the one line.
            cause = _salt_error_cause(error)
            if cause is None:
                raise
            raise cause from None
        print(summarize(model, list(cfg.sizes), cfg.batch_size))


if __name__ == "__main__":
    main()
