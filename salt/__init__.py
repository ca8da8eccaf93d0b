"""salt: an experiment suite for salt segmentation of seismic reflection tiles."""

from pathlib import Path

from omegaconf import OmegaConf

__version__ = "0.1.0"

# The Hydra configs. In a checkout `salt/conf` links to the top-level `conf/`; an installed
# package carries them as package data, so commands run from anywhere.
CONF_DIR = Path(__file__).parent / "conf"

# ${len:${data.channels}} in conf/train.yaml: the encoder takes one channel per input channel.
if not OmegaConf.has_resolver("len"):
    OmegaConf.register_new_resolver("len", len)
