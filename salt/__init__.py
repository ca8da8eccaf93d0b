"""salt: an experiment suite for salt segmentation of seismic reflection tiles."""

from pathlib import Path

__version__ = "0.1.0"

# The Hydra configs. In a checkout `salt/conf` links to the top-level `conf/`; an installed
# package carries them as package data, so commands run from anywhere.
CONF_DIR = Path(__file__).parent / "conf"
