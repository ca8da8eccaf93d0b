"""Segmentation networks: a timm encoder, a U-Net or LinkNet decoder, an optional
FPN-style hypercolumn and an optional empty-tile head, composed from config.

``hydra.utils.instantiate(cfg.model)`` builds one (``conf/model/*.yaml`` point here and
take the encoder from the top-level ``encoder`` group, ``conf/encoder/*.yaml``). Every
network returns a `SegmentationOutput`.
"""

from salt.models.encoder import Encoder
from salt.models.linknet import Linknet
from salt.models.network import SIZE_MULTIPLE, SegmentationNetwork, SegmentationOutput, check_input_size
from salt.models.unet import Unet

__all__ = [
    "SIZE_MULTIPLE",
    "Encoder",
    "Linknet",
    "SegmentationNetwork",
    "SegmentationOutput",
    "Unet",
    "check_input_size",
]
