"""`section(cfg)`: trained runs and a section file → probability map, mask, overlay, summary.

Steps, each logged:

1. read and check the section (`salt.section.reader`) and the settings: every bad input
   stops here, before anything is written;
2. find the runs and load their networks (`salt.prediction.runs`);
3. predict the section window by window and blend (`salt.section.inference`) into a
   float16 map, the one section-sized array (besides the section itself);
4. threshold it and write the outputs (`salt.section.outputs`), each atomically, the
   summary last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from salt.errors import SaltError
from salt.prediction.pipeline import inference_settings
from salt.prediction.runs import find_runs
from salt.section import outputs
from salt.section.inference import SECTION_KEYS, SectionModel, SectionSettings, predict_section
from salt.section.reader import SegySlice, read_section
from salt.section.windows import WindowGrid
from salt.settings import settings_at_keys


@dataclass(frozen=True)
class SectionResult:
    out_dir: Path
    files: dict[str, Path]
    summary: dict


def section_settings(cfg: DictConfig) -> SectionSettings:
    return settings_at_keys(SectionSettings, cfg, SECTION_KEYS)


def section(cfg: DictConfig, *, log: Callable[[str], None] = print) -> SectionResult:
    """Run the whole command as conf/section.yaml describes (see the module docstring)."""
    start = time.perf_counter()
    if not cfg.get("input"):
        raise SaltError("input: not set; name the section to predict, input=PATH (.sgy/.segy, .png/.tif, .npy)")
    settings = section_settings(cfg)
    inference = inference_settings(cfg)
    max_side = int(cfg.overlay.max_side)
    if max_side < 1:
        raise SaltError(f"overlay.max_side={max_side}: must be at least 1 pixel")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise SaltError(f"out {out}: exists and is not a directory")
    data = read_section(cfg.input, SegySlice.from_config(cfg.get("segy")))
    height, width = data.shape
    grid = WindowGrid(height, width, settings.stride)
    log(f"section {data.source}: {data.description}; {len(grid):,} windows ({len(grid.rows)} × {len(grid.cols)}, stride {settings.stride})")

    runs = find_runs([cfg.runs] if isinstance(cfg.runs, str) else list(cfg.runs or []), str(cfg.checkpoint))
    models = [SectionModel.from_run(run) for run in runs]
    log(f"{len(models)} run(s): {', '.join(model.name for model in models)}; device {inference.torch_device}, precision {inference.resolved_precision}, flip TTA {'on' if inference.hflip else 'off'}")

    probability = np.empty((height, width), dtype=np.float16)
    predicted = predict_section(data.values, models, settings, inference, out=probability, log=log)
    rate = predicted.windows / max(predicted.seconds, 1e-9)
    log(f"predicted {predicted.windows:,} windows in {predicted.seconds:.1f} s ({rate:.1f} windows/s)")

    mask = probability > np.float16(settings.mask_threshold)
    salt_fraction = float(np.count_nonzero(mask)) / mask.size
    files = {
        "probability": outputs.write_probability(out / outputs.PROBABILITY, probability),
        "mask": outputs.write_mask(out / outputs.MASK, mask),
        "overlay": outputs.write_overlay(out / outputs.OVERLAY, data.values, mask, max_side),
    }
    summary = {
        "input": str(data.source),
        "description": data.description,
        "height": height,
        "width": width,
        "stride": settings.stride,
        "windows": predicted.windows,
        "window_rows": len(grid.rows),
        "window_cols": len(grid.cols),
        "runs": [model.name for model in models],
        "checkpoint": str(cfg.checkpoint),
        "window_rule": settings.window_rule,
        "windows_emptied": predicted.windows_emptied,
        "mask_threshold": settings.mask_threshold,
        "empty_threshold": settings.empty_threshold,
        "depth": {"top": settings.depth_top, "per_sample": settings.depth_per_sample},
        "no_data": settings.no_data,
        "no_data_fraction": round(predicted.no_data_samples / (height * width), 6),
        "tta": inference.hflip,
        "crop": inference.crop,
        "device": str(inference.torch_device),
        "precision": inference.resolved_precision,
        "seconds": round(predicted.seconds, 3),
        "total_seconds": round(time.perf_counter() - start, 3),
        "windows_per_second": round(rate, 3),
        "samples_per_second": round(height * width / max(predicted.seconds, 1e-9), 1),
        "salt_fraction": round(salt_fraction, 6),
        "outputs": {name: path.name for name, path in files.items()},
    }
    json_path, md_path = outputs.write_summary(out, summary)
    files.update(summary_json=json_path, summary_md=md_path)
    log(f"salt in {salt_fraction:.2%} of the section; wrote {', '.join(path.name for path in files.values())} to {out}")
    return SectionResult(out_dir=out, files=files, summary=summary)
