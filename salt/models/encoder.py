"""The encoder: a timm backbone cut into feature maps, one per stride level."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import timm
import torch
from torch import Tensor, nn

from salt.errors import ModelConfigError

# Side of the blank image pushed through a new encoder to measure its strides. 64 keeps
# the deepest map of a stride-32 backbone at 2×2 and costs milliseconds even for ResNet-152.
PROBE_SIZE = 64


class Encoder(nn.Module):
    """A timm model built with ``features_only=True``.

    forward: ``[B, in_chans, H, W]`` → list of feature maps, shallowest first, map ``i``
    of shape ``[B, channels[i], H / reductions[i], W / reductions[i]]``.

    ``channels`` are timm's ``feature_info`` channel counts. ``reductions`` are measured
    with one probe pass when the encoder is built, because dropping the stem max-pool
    halves every stride after it while ``feature_info`` keeps reporting the original ones
    (a ResNet goes from 2, 4, 8, 16, 32 to 2, 2, 4, 8, 16).

    Args:
        name: any timm model name (``resnet34``, ``seresnext50_32x4d``, ``resnet26d``, ...).
        pretrained: load timm's ImageNet weights (from the Hugging Face hub or its cache).
        in_chans: input channels; timm adapts the first convolution's pretrained weights.
        drop_first_maxpool: replace the stem's max-pool by the identity, which doubles the
            resolution of every deeper map; the original solution scored better with it.
        model_kwargs: further arguments of the timm model's constructor, e.g.
            ``{"channels": [32, 64, 128, 256]}`` for a ResNet at half width (from scratch
            only: pretrained weights fit the published widths alone).
    """

    def __init__(
        self,
        name: str,
        *,
        pretrained: bool,
        in_chans: int = 3,
        drop_first_maxpool: bool = True,
        model_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
            raise ModelConfigError(f"encoder.in_chans={in_chans!r}: must be a positive integer")
        self.name = name
        self.in_chans = in_chans
        self.pretrained = bool(pretrained)
        self.drop_first_maxpool = bool(drop_first_maxpool)
        self.model_kwargs = _plain(dict(model_kwargs or {}))
        self.model = _create_backbone(name, pretrained=self.pretrained, in_chans=in_chans, model_kwargs=self.model_kwargs)
        if self.drop_first_maxpool:
            _drop_first_maxpool(self.model, name)
        self.channels: tuple[int, ...] = tuple(self.model.feature_info.channels())
        self.reductions: tuple[int, ...] = self._measure_reductions()

    def forward(self, image: Tensor) -> list[Tensor]:
        if image.ndim != 4 or image.shape[1] != self.in_chans:
            raise ModelConfigError(
                f"input of shape {tuple(image.shape)}: encoder {self.name} expects "
                f"[batch, {self.in_chans}, height, width] (encoder.in_chans={self.in_chans})"
            )
        return list(self.model(image))

    def _measure_reductions(self) -> tuple[int, ...]:
        was_training = self.training
        # eval: batch norm on a single blank image would fail in training mode.
        self.model.eval()
        try:
            with torch.no_grad():
                probe = torch.zeros(1, self.in_chans, PROBE_SIZE, PROBE_SIZE)
                features = self.model(probe)
        except RuntimeError as error:
            raise ModelConfigError(
                f"encoder {self.name} cannot run on a {PROBE_SIZE}×{PROBE_SIZE} image as a "
                f"feature extractor ({type(error).__name__})"
            ) from error
        finally:
            self.model.train(was_training)

        reductions = []
        for level, (feature, channels) in enumerate(zip(features, self.channels)):
            if feature.ndim != 4 or feature.shape[1] != channels:
                raise ModelConfigError(
                    f"encoder {self.name}: feature map {level} has shape {tuple(feature.shape)}, "
                    f"expected [batch, {channels}, h, w] (channels-last backbones are not supported)"
                )
            height, width = feature.shape[-2:]
            if height != width or PROBE_SIZE % height:
                raise ModelConfigError(
                    f"encoder {self.name}: feature map {level} is {height}×{width} for a "
                    f"{PROBE_SIZE}×{PROBE_SIZE} input, not an integer stride"
                )
            reductions.append(PROBE_SIZE // height)
        for shallow, deep in zip(reductions, reductions[1:]):
            if deep % shallow:
                raise ModelConfigError(
                    f"encoder {self.name}: strides {reductions} do not each divide the next, "
                    "so a decoder cannot walk back up them"
                )
        return tuple(reductions)

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, in_chans={self.in_chans}, pretrained={self.pretrained}, "
            f"drop_first_maxpool={self.drop_first_maxpool}, "
            + (f"model_kwargs={self.model_kwargs}, " if self.model_kwargs else "")
            + f"channels={self.channels}, "
            f"reductions={self.reductions}"
        )


def _plain(value: Any) -> Any:
    """Config containers (Hydra's lists and dicts) as plain tuples and dicts, so that timm
    gets the types its signatures name and messages show the values as written."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(_plain(item) for item in value)
    return value


def _create_backbone(name: str, *, pretrained: bool, in_chans: int, model_kwargs: Mapping[str, Any]) -> nn.Module:
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
        raise ModelConfigError(f"encoder.name={name!r} is not a timm model{hint}")
    try:
        return timm.create_model(name, features_only=True, pretrained=pretrained, in_chans=in_chans, **model_kwargs)
    except TypeError as error:
        # An argument the architecture's constructor does not take, or a value of a type it
        # cannot use.
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelConfigError(f"encoder.model_kwargs={model_kwargs}: encoder {name} refuses them ({first_line})") from None
    except OSError as error:
        # Hub and cache misses surface as OSError subclasses (huggingface_hub, requests,
        # urllib); their messages span lines and never name the model, so say it here.
        raise ModelConfigError(
            f"encoder {name}: pretrained weights could not be loaded ({type(error).__name__}: "
            "no reachable hub and not in the local cache); set encoder.pretrained=false "
            "or fetch the weights first"
        ) from None
    except RuntimeError as error:
        # timm's word for "this architecture has no features_only mode".
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelConfigError(f"encoder {name} cannot be built as a feature extractor: {first_line}") from error


def _drop_first_maxpool(model: nn.Module, name: str) -> None:
    """Replace the first max-pool (ResNet's ``maxpool``, possibly wrapped with anti-aliasing)
    by the identity, in place."""
    for path, module in model.named_modules():
        if path and (isinstance(module, nn.MaxPool2d) or path.rsplit(".", 1)[-1] == "maxpool"):
            parent_path, _, attribute = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            setattr(parent, attribute, nn.Identity())
            return
    raise ModelConfigError(
        f"encoder {name} has no stem max-pool to drop; set encoder.drop_first_maxpool=false"
    )
