"""Whole sections: reading (SEG-Y, images, arrays), windows and blending, exactness against
tile-by-tile prediction, a trained model on a synthetic section, and every bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from salt import synthetic
from salt.data.prepared import PaddingSettings, prepare_tiles
from salt.errors import DataError, SaltError
from salt.geometry import TILE_SIZE
from salt.models import SegmentationOutput
from salt.prediction import InferenceSettings, predict_tiles
from salt.section import (
    BandBlender,
    SectionModel,
    SectionSettings,
    SegySlice,
    WindowGrid,
    apply_window_rule,
    blend_weights,
    no_data,
    predict_section,
    read_section,
    window_origins,
)
from salt.section.outputs import OUTPUTS
from salt.section.pipeline import section

from conftest import REPO
from test_prediction import QUICK_RUN, compose

try:
    import segyio  # a dependency, imported lazily by the package: tests that write SEG-Y need it
except ImportError:  # pragma: no cover
    segyio = None
needs_segyio = pytest.mark.skipif(segyio is None, reason="segyio is not installed")

CHANNELS = ("image", "depth_ramp", "depth", "coord_x")  # every kind: plain, row ramp, the window's z, mirror-sensitive


class FixedConvNet(nn.Module):
    """A fixed random convolution with an empty-tile head: not mirror-symmetric, reads every
    channel, so any difference in how a window is prepared shows in its output."""

    size_multiple = 32

    def __init__(self, channels: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(channels, 1, 5, padding=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator))

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        logits = self.conv(x)
        return SegmentationOutput(logits, logits[:, 0, :, : x.shape[-1] // 2].mean(dim=(1, 2)))


class ConstantNet(nn.Module):
    """P(salt) = `probability` at every pixel, whatever the input."""

    size_multiple = 32

    def __init__(self, probability: float) -> None:
        super().__init__()
        self.logit = float(np.log(probability / (1 - probability)))

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        logits = torch.full_like(x[:, :1], self.logit)
        return SegmentationOutput(logits, None)


def fixed_model(padding: PaddingSettings = PaddingSettings()) -> SectionModel:
    return SectionModel(FixedConvNet(len(CHANNELS)).eval(), CHANNELS, padding, "fixed")


@pytest.fixture(scope="module")
def synthetic_section() -> tuple[np.ndarray, np.ndarray]:
    """A synthetic section of 3 × 4 tiles (float32 amplitude, bool salt)."""
    return synthetic.section(np.random.default_rng(5), 3 * TILE_SIZE, 4 * TILE_SIZE)


# --- windows and blending ----------------------------------------------------------------------


def test_windows_cover_the_section_the_last_flush_with_its_edge():
    assert window_origins(101, 50).tolist() == [0]
    assert window_origins(202, 101).tolist() == [0, 101]
    assert window_origins(250, 50).tolist() == [0, 50, 100, 149]
    assert window_origins(251, 50).tolist() == [0, 50, 100, 150]
    grid = WindowGrid(303, 250, 50)
    assert len(grid) == len(grid.rows) * len(grid.cols) == 6 * 4  # rows 0, 50, …, 200 and 202
    for length, stride in ((101, 1), (517, 37), (1000, 101)):
        covered = np.zeros(length, dtype=int)
        for origin in window_origins(length, stride):
            covered[origin : origin + TILE_SIZE] += 1
        assert covered.min() >= 1
    for stride in (0, 102):
        with pytest.raises(SaltError, match=f"stride={stride}: must lie in 1..101"):
            window_origins(500, stride)
    with pytest.raises(SaltError, match="stride=True"):
        SectionSettings(stride=True)


def test_blend_weights_are_smooth_positive_and_centred():
    weights = blend_weights()
    assert weights.shape == (TILE_SIZE, TILE_SIZE) and weights.min() > 0
    assert weights[50, 50] == weights.max() and np.allclose(weights, weights.T) and np.allclose(weights, weights[::-1, ::-1])


def test_a_constant_probability_network_gives_a_constant_map(synthetic_section):
    """The weights sum to one wherever windows overlap: no seams, at any stride."""
    values = np.pad(synthetic_section[0], ((0, 17), (0, 29)))  # sides no stride divides
    model = SectionModel(ConstantNet(0.3), ("image",), PaddingSettings(mode="reflect"), "constant")
    for stride in (50, 37, 101):
        settings = SectionSettings(stride=stride, no_data=False, progress_every=0)
        probability = predict_section(values, [model], settings, InferenceSettings(hflip=True, batch_size=16)).probability
        assert probability.shape == values.shape
        np.testing.assert_allclose(probability, np.float32(0.3), rtol=0, atol=1e-6)


def test_band_blender_holds_one_band_and_streams_rows_in_order():
    out = np.zeros((300, 250), dtype=np.float32)
    blender = BandBlender(out)
    assert blender.sum.shape == (TILE_SIZE, 250)
    rng = np.random.default_rng(0)
    for top in window_origins(300, 50).tolist():
        lefts = window_origins(250, 50)
        blender.add(top, lefts, np.full((len(lefts), TILE_SIZE, TILE_SIZE), rng.random(), dtype=np.float32))
    with pytest.raises(ValueError, match="top to bottom"):
        blender.add(0, lefts, np.zeros((len(lefts), TILE_SIZE, TILE_SIZE), dtype=np.float32))
    blender.finish()
    assert out.min() > 0 and np.isfinite(out).all()


def test_samples_without_data_are_never_salt():
    """A flat block (a gap, muted traces) is muted to its edge; data around it is not."""
    values = np.random.default_rng(3).standard_normal((250, 300)).astype(np.float32)
    values[40:90, 100:180] = 0.0
    values[200:203, 10:13] = 5.0  # too small to be a gap: 3×3
    flat = no_data(values, slice(0, 250))
    expected = np.zeros(values.shape, dtype=bool)
    expected[40:90, 100:180] = True
    assert np.array_equal(flat, expected)
    assert np.array_equal(no_data(values, slice(60, 130)), expected[60:130])  # a band sees the same
    model = SectionModel(ConstantNet(0.8), ("image",), PaddingSettings(mode="reflect"), "constant")
    predicted = predict_section(values, [model], SectionSettings(progress_every=0), InferenceSettings(hflip=False))
    assert predicted.no_data_samples == 50 * 80
    assert not predicted.probability[expected].any()
    np.testing.assert_allclose(predicted.probability[~expected], 0.8, atol=1e-6)


def test_memory_does_not_grow_with_the_section():
    """Besides the section and the output map, only a band of windows is held: what numpy
    allocates at the peak is the same for a section twice as tall."""
    model = SectionModel(ConstantNet(0.7), ("image",), PaddingSettings(mode="edge"), "constant")
    peaks = []
    for height in (2000, 4000):
        values = np.random.default_rng(1).standard_normal((height, 303)).astype(np.float32)
        out = np.empty(values.shape, dtype=np.float16)
        tracemalloc.start()
        predict_section(values, [model], SectionSettings(stride=101, progress_every=0), InferenceSettings(hflip=False, batch_size=8), out=out)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        np.testing.assert_allclose(out.astype(np.float32), 0.7, atol=1e-3)
    assert peaks[1] < 1.1 * peaks[0] < values.nbytes, peaks


# --- exactness: stride 101 is tile-by-tile prediction ------------------------------------------


def test_stride_101_equals_tile_by_tile_prediction_of_the_same_windows(synthetic_section, tmp_path):
    """The windows written as competition tiles (min-max normalised to 8-bit PNGs, depth =
    the tile's centre row), prepared and predicted as predict.py does, stitched: the same
    map, to the bit, as the section prediction with stride 101 (flip TTA, biharmonic
    padding, every kind of input channel)."""
    values, salt = synthetic_section
    rows, cols = values.shape[0] // TILE_SIZE, values.shape[1] // TILE_SIZE
    tiles = []
    for y in range(rows):
        for x in range(cols):
            window = np.s_[y * TILE_SIZE : (y + 1) * TILE_SIZE, x * TILE_SIZE : (x + 1) * TILE_SIZE]
            depth = y * TILE_SIZE + TILE_SIZE // 2
            tiles.append(synthetic.Tile(f"t{y}{x}", synthetic.normalise_tile(values[window]), salt[window], x, y, 0, depth))
    data = synthetic.write_dataset(tmp_path / "data", tiles, seed=0, train_fraction=0.5)
    prepared = prepare_tiles(data, tmp_path / "cache", log=lambda line: None)
    model, inference = fixed_model(), InferenceSettings(hflip=True, batch_size=4)

    expected = np.full(values.shape, np.nan, dtype=np.float32)
    for split in prepared.values():
        for batch in predict_tiles(model.net, split, np.arange(len(split)), model.channels, inference):
            for index, probability in zip(batch.indices, batch.mask_probability):
                y, x = int(split.ids[index][1]), int(split.ids[index][2])
                expected[y * TILE_SIZE : (y + 1) * TILE_SIZE, x * TILE_SIZE : (x + 1) * TILE_SIZE] = probability
    assert not np.isnan(expected).any()

    predicted = predict_section(values, [model], SectionSettings(stride=101, no_data=False, progress_every=0), inference)
    assert predicted.windows == rows * cols
    np.testing.assert_array_equal(predicted.probability, expected)
    # Overlapping windows blend: the map changes, within the range of the predictions.
    overlapped = predict_section(values, [model], SectionSettings(stride=50, no_data=False, progress_every=0), inference).probability
    assert not np.array_equal(overlapped, expected) and 0 <= overlapped.min() and overlapped.max() <= 1


def test_window_rule_empties_windows_before_blending():
    rng = np.random.default_rng(0)
    probability = rng.random((3, TILE_SIZE, TILE_SIZE)).astype(np.float32)
    probability[2] = 0.9  # all salt
    salt = np.array([0.1, 0.9, 0.9], dtype=np.float32)  # the head calls window 0 empty
    same, emptied = apply_window_rule(probability, salt, SectionSettings(window_rule="none"))
    assert same is probability and not emptied.any()
    ruled, emptied = apply_window_rule(probability, salt, SectionSettings(window_rule="empty_head"))
    assert emptied.tolist() == [True, False, False] and not ruled[0].any() and np.array_equal(ruled[1:], probability[1:])
    ruled, emptied = apply_window_rule(probability, salt, SectionSettings(window_rule="tile"))
    assert emptied.tolist() == [True, False, True] and not ruled[2].any()
    with pytest.raises(SaltError, match="window_rule='always': must be one of none, empty_head, tile"):
        SectionSettings(window_rule="always")


# --- reading sections --------------------------------------------------------------------------


@needs_segyio
def test_segy_line_written_with_segyio_reads_back_as_the_section(synthetic_section, tmp_path):
    values = synthetic_section[0]
    ieee, ibm = tmp_path / "line.sgy", tmp_path / "line_ibm.segy"
    # segyio writes (traces, samples): each column of the section is a trace.
    segyio.tools.from_array2D(str(ieee), np.ascontiguousarray(values.T), format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE)
    segyio.tools.from_array2D(str(ibm), np.ascontiguousarray(values.T))  # IBM floats: rounded to 24-bit mantissas
    read = read_section(ieee)
    assert read.values.dtype == np.float32 and np.array_equal(read.values, values)
    assert "2-D line of 404 traces × 303 samples" in read.description
    np.testing.assert_allclose(read_section(ibm).values, values, rtol=1e-6, atol=1e-6)


@needs_segyio
def test_segy_cube_slices_read_back(tmp_path):
    rng = np.random.default_rng(2)
    cube = rng.standard_normal((4, 120, 110)).astype(np.float32)  # inline, crossline, sample
    path = tmp_path / "cube.sgy"
    segyio.tools.from_array3D(str(path), cube, format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE)
    assert np.array_equal(read_section(path, SegySlice(inline=3)).values, cube[2].T)  # inlines numbered from 1
    crossline = np.concatenate([cube] * 30)  # 120 inlines: a crossline section wide enough
    wide = tmp_path / "wide.sgy"
    segyio.tools.from_array3D(str(wide), crossline, format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE)
    assert np.array_equal(read_section(wide, SegySlice(crossline=7)).values, crossline[:, 6].T)
    assert np.array_equal(read_section(wide, SegySlice(sample=5)).values, crossline[:, :, 5])


def test_images_and_arrays_read_as_grey_sections(synthetic_section, tmp_path):
    values = synthetic_section[0]
    grey8 = synthetic.normalise_tile(values)
    grey16 = (grey8.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "s8.png"), grey8)
    cv2.imwrite(str(tmp_path / "s16.png"), grey16)
    cv2.imwrite(str(tmp_path / "s16.tif"), grey16)
    cv2.imwrite(str(tmp_path / "rgb_grey.png"), np.repeat(grey8[..., None], 3, axis=2))  # as the competition's PNGs
    np.save(tmp_path / "s.npy", values.astype(np.float64))
    assert np.array_equal(read_section(tmp_path / "s8.png").values, grey8)
    assert read_section(tmp_path / "s16.png").values.dtype == np.uint16
    assert np.array_equal(read_section(tmp_path / "s16.tif").values, grey16)
    assert np.array_equal(read_section(tmp_path / "rgb_grey.png").values, grey8)
    assert np.array_equal(read_section(tmp_path / "s.npy").values, values)


# --- bad input: one line naming the file, nothing written ---------------------------------------


def bad_inputs(tmp_path: Path, values: np.ndarray) -> list[tuple[Path, dict, str]]:
    """(file, segy settings, expected message) for every bad input the issue lists."""
    cases = []
    small = tmp_path / "small.npy"
    np.save(small, values[:100])
    cases.append((small, {}, r"section of 100×404 samples is smaller than one 101×101 window"))
    cube = tmp_path / "cube.sgy"
    segyio.tools.from_array3D(str(cube), np.zeros((3, 110, 120), dtype=np.float32), format=segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE)
    cases.append((cube, {}, r"a 3-D cube \(3 inlines × 110 crosslines × 120 samples\); choose one section with segy.inline=N"))
    cases.append((cube, {"inline": 9}, r"segy.inline=9 is not an inline of the cube \(1–3;"))
    cases.append((cube, {"crossline": 0}, r"segy.crossline=0 is not a crossline of the cube \(1–110;"))
    cases.append((cube, {"sample": 120}, r"segy.sample=120 is out of range \(samples 0–119;"))
    line = tmp_path / "line.sgy"
    segyio.tools.from_array2D(str(line), np.ascontiguousarray(values.T))
    data = line.read_bytes()
    truncated = tmp_path / "truncated.sgy"
    truncated.write_bytes(data[: len(data) - 1000])
    cases.append((truncated, {}, r"not a readable SEG-Y file, corrupt or truncated \(trace count inconsistent with file size"))
    corrupt = tmp_path / "corrupt.segy"
    corrupt.write_bytes(b"not seismic at all" * 300)
    cases.append((corrupt, {}, r"not a readable SEG-Y file, corrupt or truncated"))
    grey = synthetic.normalise_tile(values)
    alpha = tmp_path / "alpha.png"
    cv2.imwrite(str(alpha), np.dstack([grey, grey, grey, np.full_like(grey, 255)]))
    cases.append((alpha, {}, r"image with an alpha channel; save the section as a greyscale image"))
    colour = tmp_path / "colour.png"
    cv2.imwrite(str(colour), cv2.applyColorMap(grey, cv2.COLORMAP_JET))
    cases.append((colour, {}, r"colour image; a section is one amplitude per sample"))
    broken_png = tmp_path / "broken.png"
    broken_png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    cases.append((broken_png, {}, r"not a readable image"))
    holes = values.copy()
    holes[200, 7] = np.nan
    holes[250, 9] = np.inf
    nans = tmp_path / "nans.npy"
    np.save(nans, holes)
    cases.append((nans, {}, r"2 NaN or infinite value\(s\) \(first in row 200\)"))
    volume = tmp_path / "volume.npy"
    np.save(volume, np.zeros((2, 120, 120), dtype=np.float32))
    cases.append((volume, {}, r"3-D array of shape \(2, 120, 120\); save one 2-D section"))
    other = tmp_path / "section.jpg"
    other.write_bytes(b"x")
    cases.append((other, {}, r"unknown kind of file .jpg"))
    cases.append((tmp_path / "missing.sgy", {}, r"file not found"))
    cases.append((small, {"inline": 1}, r"segy.inline is set but the file is not SEG-Y"))
    return cases


@needs_segyio
def test_every_bad_input_is_one_line_naming_the_file(synthetic_section, tmp_path):
    for path, segy, message in bad_inputs(tmp_path, synthetic_section[0]):
        with pytest.raises(DataError) as error:
            read_section(path, SegySlice(**segy))
        text = str(error.value)
        assert text.startswith(f"{path}: ") and "\n" not in text, text
        assert re.search(message, text), f"{path.name}: {text}"
    with pytest.raises(SaltError, match="segy.inline and segy.sample both set"):
        SegySlice(inline=1, sample=3)


@needs_segyio
def test_bad_input_stops_the_command_before_it_writes_anything(synthetic_section, tmp_path):
    cases = bad_inputs(tmp_path, synthetic_section[0])
    out = tmp_path / "out"
    for path, segy, message in cases:
        overrides = [f"segy.{key}={value}" for key, value in segy.items()]
        cfg = compose("section", f"runs=[{tmp_path / 'no_run'}]", f"input={path}", f"out={out}", *overrides)
        with pytest.raises(DataError, match=message):
            section(cfg, log=lambda line: None)
        assert not out.exists()
    with pytest.raises(SaltError, match="input: not set"):
        section(compose("section", f"out={out}"), log=lambda line: None)


@needs_segyio
def test_the_command_reports_bad_input_in_one_line_and_exits_non_zero(synthetic_section, tmp_path):
    path, _, message = bad_inputs(tmp_path, synthetic_section[0])[1]
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "salt.section", f"runs=[{tmp_path / 'no_run'}]", f"input={path}", f"out={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {path}: a 3-D cube (3 inlines × 110 crosslines × 120 samples); choose one section with segy.inline=N, segy.crossline=N or segy.sample=N"]
    assert not out.exists()


# --- a trained model on a synthetic section -------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny U-Net trained for 20 short epochs (fp32) on tiles of three synthetic sections."""
    from hydra.core.hydra_config import HydraConfig

    from salt.training.run import train

    root = tmp_path_factory.mktemp("section_run")
    tiles = synthetic.generate_tiles(seed=3, sections=3, section_cols=8, section_rows=5)
    data = synthetic.write_dataset(root / "data", tiles, seed=3, train_fraction=0.8)
    fast = [o for o in QUICK_RUN if not o.startswith(("model.", "trainer.max_epochs", "+trainer.limit_train", "folds.k"))]
    overrides = [
        "experiment=demo", "data=synthetic", f"data.dir={data}", f"paths.output_dir={root}", f"paths.cache_dir={root / 'cache'}",
        *fast, "model.decoder_channels=[16,16,16,8,8]", "model.hypercolumn_channels=4", "folds.k=10", "fold=0",
        "trainer.max_epochs=20", "trainer.precision=32-true", "optimizer.lr=0.003", "+trainer.enable_progress_bar=false",
    ]
    try:
        train(compose("train", *overrides, run_dir=root / "run"))
    finally:
        HydraConfig.instance().cfg = None
    return root / "run"


@pytest.mark.slow
def test_trained_model_finds_the_salt_of_a_synthetic_section(trained_run, tmp_path):
    """From a file to the outputs with the command's own function: the section's IoU with
    its true salt beats the every-sample-empty baseline (IoU 0) clearly."""
    values, truth = synthetic.section(np.random.default_rng(11), 404, 808)
    path = tmp_path / "section.npy"
    np.save(path, values)
    out = tmp_path / "out"
    lines = []
    cfg = compose("section", f"runs=[{trained_run}]", "checkpoint=last", f"input={path}", f"out={out}", "progress_every=0.000001")
    result = section(cfg, log=lines.append)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    probability = np.load(out / "probability.npy")
    assert probability.dtype == np.float16 and probability.shape == values.shape
    mask = cv2.imread(str(out / "mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == values.shape and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask == 255, probability > 0.5)
    overlay = cv2.imread(str(out / "overlay.png"))
    assert overlay.shape == (*values.shape, 3)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"] == 8 * 16 and summary["height"] == 404 and summary["width"] == 808
    assert summary["salt_fraction"] == pytest.approx((mask == 255).mean(), abs=1e-6)
    assert (out / "summary.md").read_text().startswith("# Section prediction")
    assert any("windows/s" in line for line in lines), lines
    predicted = mask == 255
    iou = (predicted & truth).sum() / (predicted | truth).sum()
    empty_baseline_iou = 0.0  # no sample predicted salt: intersection 0, the section holds salt
    print(f"section IoU {iou:.3f} (every sample empty: {empty_baseline_iou})")
    assert truth.any() and iou > empty_baseline_iou + 0.35, f"IoU {iou:.3f}"
    assert result.summary["runs"] == [summary["runs"][0]]
