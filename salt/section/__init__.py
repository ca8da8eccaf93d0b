"""Whole seismic sections: salt predicted on a 2-D section of any size.

    python -m salt.section 'runs=[outputs/cpu/resnet18/fold_0]' input=line.sgy out=DIR

A section (SEG-Y line or slice of a cube, 8/16-bit PNG/TIFF, or .npy) is cut into
101×101 windows on a regular grid with overlap; each window is prepared exactly as
training prepared a tile (min-max normalised on its own, padded as the run was trained,
its input channels stacked), predicted by the ensemble with flip TTA, and the
probabilities are blended with smooth weights into one map of the section's size.
One module each:

- `reader`: one section from a file (`read_section`, `SegySlice`), checked;
- `windows`: the window grid, cutting and normalising windows, the blend weights and the
  band-by-band blender (`BandBlender`);
- `inference`: the ensemble over a section (`predict_section`, `SectionModel`,
  `SectionSettings`, the window rule);
- `outputs`: probability map, mask, overlay picture, summary;
- `pipeline`: `section(cfg)`, the whole command (conf/section.yaml).
"""

from salt.section.inference import WINDOW_RULES, SectionModel, SectionPrediction, SectionSettings, apply_window_rule, predict_section
from salt.section.reader import Section, SegySlice, read_section
from salt.section.windows import BandBlender, WindowGrid, blend_weights, cut_windows, no_data, window_origins

__all__ = [
    "WINDOW_RULES",
    "BandBlender",
    "Section",
    "SectionModel",
    "SectionPrediction",
    "SectionSettings",
    "SegySlice",
    "WindowGrid",
    "apply_window_rule",
    "blend_weights",
    "cut_windows",
    "no_data",
    "predict_section",
    "read_section",
    "window_origins",
]
