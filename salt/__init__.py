"""salt: an experiment suite for salt segmentation of seismic reflection tiles."""

__version__ = "0.1.0"
