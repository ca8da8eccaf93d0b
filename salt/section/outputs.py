"""What a section prediction writes: the probability map, the mask, an overlay picture and
a summary. Each file is written under a temporary name and renamed when complete
(`salt.files.atomic_file`).

- ``probability.npy``: (H, W) float16 P(salt) per sample (``np.load`` reads it);
- ``mask.png``: (H, W) 8-bit, 255 = salt (``probability > thresholds.mask``);
- ``overlay.png``: the section in grey with the salt outline in red over a faint red tint,
  scaled down to at most `overlay.max_side` pixels on its longer side;
- ``summary.json`` / ``summary.md``: size, windows, time, salt fraction, settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from salt.files import atomic_file, write_png

PROBABILITY, MASK, OVERLAY, SUMMARY_JSON, SUMMARY_MD = "probability.npy", "mask.png", "overlay.png", "summary.json", "summary.md"
OUTPUTS = (PROBABILITY, MASK, OVERLAY, SUMMARY_JSON, SUMMARY_MD)
OUTLINE = (40, 40, 255)  # BGR red
TINT_ALPHA = 0.18
# Grey levels clip at these percentiles of the amplitude: a few bright reflectors would
# otherwise leave the rest of the section a flat grey.
CLIP_PERCENTILES = (0.5, 99.5)


def write_probability(path: str | os.PathLike, probability: np.ndarray) -> Path:
    """(H, W) probabilities as float16 .npy, written row block by row block into the file."""
    path = Path(path)
    with atomic_file(path) as tmp:
        stored = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=probability.shape)
        for start in range(0, len(probability), 1024):
            stored[start : start + 1024] = probability[start : start + 1024]
        stored.flush()
        del stored
    return path


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    path = Path(path)
    with atomic_file(path) as tmp:
        write_png(tmp, mask.astype(np.uint8) * np.uint8(255))
    return path


def overlay_picture(values: np.ndarray, mask: np.ndarray, max_side: int = 4000) -> np.ndarray:
    """(h, w, 3) uint8 BGR: the section in grey, salt tinted and outlined in red.

    Sections longer than `max_side` on a side are scaled down (area averaging, the mask
    by majority) so the picture stays viewable; the outline is drawn at the picture's scale.
    """
    height, width = values.shape
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    sample = values[:: max(1, height // 512), :: max(1, width // 512)].astype(np.float32)
    low, high = np.percentile(sample, CLIP_PERCENTILES)
    gain = 255.0 / max(float(high - low), 1e-12)
    grey = np.empty((height, width), dtype=np.uint8)
    for start in range(0, height, 1024):  # block by block: no float copy of the whole section
        block = values[start : start + 1024].astype(np.float32)
        grey[start : start + 1024] = np.clip((block - low) * gain, 0, 255)
    salt = mask.astype(np.uint8)
    if scale < 1.0:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        salt = (cv2.resize(salt.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5).astype(np.uint8)
    picture = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    tinted = picture.astype(np.float32)
    inside = salt.astype(bool)
    tinted[inside] = (1 - TINT_ALPHA) * tinted[inside] + TINT_ALPHA * np.array(OUTLINE, dtype=np.float32)
    picture = tinted.astype(np.uint8)
    thickness = max(1, round(max(picture.shape[:2]) / 800))
    contours, _ = cv2.findContours(salt, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(picture, contours, -1, OUTLINE, thickness)
    return picture


def write_overlay(path: str | os.PathLike, values: np.ndarray, mask: np.ndarray, max_side: int = 4000) -> Path:
    path = Path(path)
    picture = overlay_picture(values, mask, max_side)
    with atomic_file(path) as tmp:
        write_png(tmp, picture)
    return path


def write_summary(out_dir: str | os.PathLike, summary: dict) -> tuple[Path, Path]:
    """``summary.json`` (everything) and ``summary.md`` (a short table)."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / SUMMARY_JSON, out_dir / SUMMARY_MD
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    rows = [
        ("input", f"`{summary['input']}` ({summary['description']})"),
        ("size", f"{summary['height']:,} × {summary['width']:,} samples"),
        ("windows", f"{summary['windows']:,} ({summary['window_rows']} × {summary['window_cols']}, stride {summary['stride']})"),
        ("runs", ", ".join(summary["runs"])),
        ("window rule", f"{summary['window_rule']} ({summary['windows_emptied']} windows emptied)"),
        ("no data", f"{summary['no_data_fraction']:.2%} of the samples (flat, never salt)" if summary["no_data"] else "not muted"),
        ("flip TTA", "yes" if summary["tta"] else "no"),
        ("device, precision", f"{summary['device']}, {summary['precision']}"),
        ("time", f"{summary['seconds']:.1f} s ({summary['windows_per_second']:.1f} windows/s, {summary['samples_per_second']:,.0f} samples/s)"),
        ("salt", f"{summary['salt_fraction']:.2%} of the samples (P(salt) > {summary['mask_threshold']})"),
    ]
    text = "# Section prediction\n\n| | |\n|---|---|\n" + "".join(f"| {name} | {value} |\n" for name, value in rows)
    with atomic_file(md_path) as tmp:
        tmp.write_text(text)
    return json_path, md_path
