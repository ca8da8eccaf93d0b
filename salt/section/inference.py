"""An ensemble over a whole section: windows in bands, through the networks, blended.

For each row of windows (`salt.section.windows.WindowGrid`), in chunks of at most
`SectionSettings.band_windows` windows: cut and normalise the windows, pad them as each
run's training padded its tiles (`salt.data.padding.pad_tiles`, biharmonic included),
stack the run's input channels and predict with flip TTA (`salt.prediction.inference
.predict_tiles`, the code `predict.py` uses), average the runs (`EnsembleMean`), apply
the window rule, and hand the probabilities to the `BandBlender`. Memory: one chunk of
padded windows, the blender's 101-row band, and the output map.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from salt.data.padding import pad_tiles
from salt.data.prepared import PaddingSettings, PreparedTiles
from salt.errors import SaltError
from salt.geometry import TILE_SIZE
from salt.masks import tile_masks
from salt.models import SIZE_MULTIPLE
from salt.prediction.ensemble import EnsembleMean
from salt.prediction.inference import InferenceSettings, input_padding, predict_tiles
from salt.prediction.runs import Run, load_network
from salt.section.windows import BandBlender, WindowGrid, cut_windows, no_data, section_range
from salt.settings import defaults_block, store_schema

# none: blend the probabilities as they are; empty_head: a window whose empty-tile head
# says "no salt" contributes probability 0; tile: salt.masks.tile_masks as in the
# competition (the head, and a window predicted all salt emptied too).
WINDOW_RULES = ("none", "empty_head", "tile")


@dataclass(frozen=True)
class SectionModel:
    """One network and how its inputs are made: channels and the padding it was trained on."""

    net: nn.Module
    channels: tuple[str, ...]
    padding: PaddingSettings
    name: str = "network"

    @classmethod
    def from_run(cls, run: Run) -> SectionModel:
        """The run's network with its checkpoint (`load_network` refuses a bad one)."""
        if run.histogram_match:
            # The reference histogram is that of the run's whole data dir, which a section
            # does not have; matching against anything else would feed other inputs.
            raise SaltError(f"run {run.name}: trained on histogram-matched tiles (data.histogram_match=true); sections cannot be matched to its data's histogram")
        return cls(net=load_network(run), channels=tuple(run.channels), padding=run.padding, name=run.name)


@dataclass(frozen=True)
class SectionSettings:
    """How a section is cut, blended and binarised: keys of conf/section.yaml.

    stride: samples between window origins, 1..101 (101: no overlap).
    window_rule: one of `WINDOW_RULES`, applied to each window's ensemble mean before
        blending: "none" (the default: the empty-tile head and the all-salt rule fix how
        competition tiles were labelled and scored; on a section they would cut holes at
        window edges and erase salt bodies wider than a window), "empty_head" (a window the
        head calls empty adds probability 0), "tile" (`salt.masks.tile_masks`: the head, and
        windows predicted all salt emptied, as for the competition).
    mask_threshold: a sample is salt where the blended P(salt) exceeds it.
    empty_threshold: the empty-tile head's threshold for window_rule empty_head / tile.
    depth_top, depth_per_sample: the depth fed to the ``depth`` channel of a window is
        depth_top + depth_per_sample × (row of the window's centre sample).
    no_data: samples in flat regions (one value over 5×5 samples: muted or missing traces,
        padding, gaps) get probability 0. Networks trained on competition tiles read
        featureless windows as salt (salt interiors are the quietest part of a section);
        there is no data there.
    band_windows: windows padded and predicted together (bounds memory on wide sections).
    progress_every: seconds between progress lines (0: none).
    """

    stride: int = 50
    window_rule: str = "none"
    mask_threshold: float = 0.5
    empty_threshold: float = 0.5
    depth_top: float = 0.0
    depth_per_sample: float = 1.0
    no_data: bool = True
    band_windows: int = 256
    progress_every: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or not 1 <= self.stride <= TILE_SIZE:
            raise SaltError(f"stride={self.stride!r}: must be an integer in 1..{TILE_SIZE} (101: windows side by side)")
        if self.window_rule not in WINDOW_RULES:
            raise SaltError(f"window_rule={self.window_rule!r}: must be one of {', '.join(WINDOW_RULES)}")
        for name in ("mask_threshold", "empty_threshold"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise SaltError(f"thresholds.{name.split('_')[0]}={getattr(self, name)}: must lie in [0, 1]")
        if int(self.band_windows) < 1:
            raise SaltError(f"band_windows={self.band_windows}: must be at least 1")

    def depth_of(self, top: int) -> float:
        """The depth of a window whose first row is `top`."""
        return float(self.depth_top + self.depth_per_sample * (top + TILE_SIZE // 2))


# Where conf/section.yaml keeps the fields not named by their own key.
SECTION_KEYS = {"mask_threshold": "thresholds.mask", "empty_threshold": "thresholds.empty", "depth_top": "depth.top", "depth_per_sample": "depth.per_sample"}
store_schema("section_windows", defaults_block(SectionSettings, SECTION_KEYS))  # conf/section.yaml


@dataclass(frozen=True)
class SectionPrediction:
    """probability: (H, W) blended P(salt) (the `out` array); grid: the windows;
    windows_emptied: windows the rule set to 0; no_data_samples: samples muted as no data;
    seconds: wall time of the prediction."""

    probability: np.ndarray
    grid: WindowGrid
    windows_emptied: int
    no_data_samples: int
    seconds: float

    @property
    def windows(self) -> int:
        return len(self.grid)


def apply_window_rule(
    mask_probability: np.ndarray, salt_probability: np.ndarray, settings: SectionSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 101, 101) probabilities with the windows the rule empties set to 0, and (n,) bool
    of those windows. The decision is `salt.masks.tile_masks`, the competition's rule."""
    emptied = np.zeros(len(mask_probability), dtype=bool)
    if settings.window_rule == "none":
        return mask_probability, emptied
    decided = tile_masks(mask_probability, salt_probability, mask_threshold=settings.mask_threshold, empty_threshold=settings.empty_threshold)
    emptied = decided.emptied_by_head | (decided.emptied_all_salt if settings.window_rule == "tile" else emptied)
    return np.where(emptied[:, None, None], np.float32(0), mask_probability), emptied


def predict_section(
    values: np.ndarray,
    models: Sequence[SectionModel],
    settings: SectionSettings = SectionSettings(),
    inference: InferenceSettings = InferenceSettings(),
    *,
    out: np.ndarray | None = None,
    log: Callable[[str], None] = print,
) -> SectionPrediction:
    """Blended P(salt) of every sample of the (H, W) section `values` (any real dtype).

    Args:
        models: the ensemble; probabilities (and empty-tile heads) are averaged over them.
        out: (H, W) float array to write into (default: a new float32 one).

    Returns:
        `SectionPrediction`; its `probability` is `out`.
    """
    if not models:
        raise SaltError("no networks to predict with")
    height, width = values.shape
    grid = WindowGrid(height, width, int(settings.stride))
    rows, cols = grid.rows, grid.cols
    out = np.empty((height, width), dtype=np.float32) if out is None else out
    if out.shape != (height, width):
        raise ValueError(f"out of shape {out.shape} for a section of {values.shape}")
    paddings = [input_padding(model.padding, inference.crop, getattr(model.net, "size_multiple", SIZE_MULTIPLE)) for model in models]
    blender = BandBlender(out, mute=(lambda finished: no_data(values, finished)) if settings.no_data else None)
    value_range = section_range(values)
    total, done, emptied = len(grid), 0, 0
    start = last_report = time.perf_counter()
    step = int(settings.band_windows)
    for top in rows.tolist():
        depth = settings.depth_of(top)
        for first in range(0, len(cols), step):
            lefts = cols[first : first + step]
            windows = cut_windows(values, top, lefts, value_range)
            mean = EnsembleMean(len(windows))
            padded: dict[PaddingSettings, PreparedTiles] = {}
            for model, padding in zip(models, paddings):
                if padding not in padded:  # runs trained alike share one padding
                    padded[padding] = PreparedTiles(
                        ids=np.arange(len(windows)).astype(str),
                        depths=np.full(len(windows), depth, dtype=np.float32),
                        images=pad_tiles(windows, padding.size, padding.mode),
                        masks=None,
                        geometry=padding.geometry,
                    )
                for batch in predict_tiles(model.net, padded[padding], np.arange(len(windows)), model.channels, inference):
                    mean.add(batch)
            mask_probability, salt_probability = mean.means()
            probability, window_emptied = apply_window_rule(mask_probability, salt_probability, settings)
            blender.add(top, lefts, probability)
            done += len(windows)
            emptied += int(window_emptied.sum())
            now = time.perf_counter()
            if settings.progress_every and now - last_report >= settings.progress_every and done < total:
                rate = done / (now - start)
                log(f"  {done:,}/{total:,} windows, {rate:.1f} windows/s, about {(total - done) / rate:.0f} s left")
                last_report = now
    blender.finish()
    return SectionPrediction(
        probability=out, grid=grid, windows_emptied=emptied, no_data_samples=blender.muted, seconds=time.perf_counter() - start
    )
