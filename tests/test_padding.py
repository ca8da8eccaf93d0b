"""Tile geometry and padding: biharmonic padding equals skimage's inpaint_biharmonic."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.restoration import inpaint_biharmonic

from salt.data.padding import PADDING_MODES, biharmonic_border, pad_masks, pad_tiles
from salt.errors import DataError, GeometryError, SaltError
from salt.geometry import TILE_SIZE, TileGeometry

TOLERANCE = 1e-4  # max abs difference on values in [0, 1]


def skimage_padded(tile: np.ndarray, size: int) -> np.ndarray:
    """The reference: the tile centred in an S×S frame whose border is unknown, inpainted."""
    geometry = TileGeometry(padded_size=size, crop_size=TILE_SIZE)
    frame = np.zeros((size, size), dtype=tile.dtype)
    frame[geometry.tile_window] = tile
    unknown = np.ones((size, size), dtype=bool)
    unknown[geometry.tile_window] = False
    return inpaint_biharmonic(frame, unknown)


def smooth_tiles(count: int, seed: int = 0) -> np.ndarray:
    """(count, 101, 101) float64 in [0, 1]: low-frequency fields plus a little noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((count, 8, 8))
    tiles = np.stack([cv2.resize(c, (TILE_SIZE, TILE_SIZE), interpolation=cv2.INTER_CUBIC) for c in coarse])
    tiles += 0.05 * rng.standard_normal(tiles.shape)
    return np.clip(tiles, 0.0, 1.0)


# --- geometry --------------------------------------------------------------------------


def test_default_geometry_matches_the_original_solution():
    geometry = TileGeometry()
    assert (geometry.padded_size, geometry.crop_size) == (148, 128)
    assert geometry.pad_width == ((23, 24), (23, 24))
    assert geometry.center_crop_start == 10
    assert geometry.crop_starts == range(0, 21)
    assert geometry.tile_in_crop() == (slice(13, 114), slice(13, 114))


@settings(max_examples=60, deadline=None)
@given(size=st.integers(TILE_SIZE, 260), data=st.data())
def test_geometry_round_trip(size, data):
    crop = data.draw(st.integers(TILE_SIZE, size))
    geometry = TileGeometry(padded_size=size, crop_size=crop)
    tile = np.arange(TILE_SIZE * TILE_SIZE).reshape(TILE_SIZE, TILE_SIZE)
    padded = np.pad(tile, geometry.pad_width, constant_values=-1)
    assert padded.shape == (size, size)
    assert (geometry.unpad(padded) == tile).all()
    assert (geometry.uncrop(geometry.crop(padded)) == tile).all()
    starts = geometry.crop_starts
    assert len(starts) >= 1
    start = (data.draw(st.sampled_from(starts)), data.draw(st.sampled_from(starts)))
    assert (geometry.uncrop(geometry.crop(padded, start), start) == tile).all()


@pytest.mark.parametrize("sizes", [(100, 100), (148, 100), (128, 148), (148.0, 128)])
def test_bad_geometry_is_a_clear_error(sizes):
    with pytest.raises(GeometryError, match="size"):
        TileGeometry(*sizes)


def test_crop_start_that_cuts_the_tile_is_refused():
    with pytest.raises(GeometryError, match="crop start"):
        TileGeometry().crop(np.zeros((148, 148)), (21, 0))


# --- biharmonic: equal to skimage --------------------------------------------------------


@pytest.mark.parametrize("size", [148, 101, 102, 103, 120])
def test_biharmonic_equals_skimage_on_smooth_tiles(size):
    tiles = smooth_tiles(2, seed=size)
    padded = pad_tiles(tiles, size)
    assert padded.shape == (2, size, size) and padded.dtype == np.float32
    for tile, ours in zip(tiles, padded):
        assert np.abs(ours - skimage_padded(tile, size)).max() <= TOLERANCE


def test_biharmonic_equals_skimage_on_synthetic_seismic_tiles(synthetic_tiles):
    # uint8 tiles, and a black (no data) one.
    chosen = [tile.image for tile in synthetic_tiles[:2]] + [np.zeros((TILE_SIZE, TILE_SIZE), np.uint8)]
    padded = pad_tiles(np.stack(chosen))
    for tile, ours in zip(chosen, padded):
        assert np.abs(ours - skimage_padded(tile, 148)).max() <= TOLERANCE


def test_masks_are_inpainted_then_thresholded_like_skimage(synthetic_tiles):
    masks = [tile.mask for tile in synthetic_tiles if 0.05 < tile.mask.mean() < 0.95][:2]
    assert masks, "the synthetic tiles should include partly salt tiles"
    references = [skimage_padded(mask.astype(np.float64), 148) for mask in masks]
    for threshold in (0.7, 0.3):
        padded = pad_masks(np.stack(masks), threshold=threshold)
        assert padded.dtype == bool
        for mask, reference, ours in zip(masks, references, padded):
            # A pixel within float32 rounding of the threshold could go either way.
            assert (ours != (reference > threshold)).sum() <= 1
            assert (TileGeometry().unpad(ours) == mask).all()


def test_biharmonic_equals_skimage_on_real_tiles(real_data):
    paths = sorted((real_data / "train" / "images").glob("*.png"))
    paths = paths[:: len(paths) // 3][:3]
    tiles = np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in paths])
    for tile, ours in zip(tiles, pad_tiles(tiles)):
        assert np.abs(ours - skimage_padded(tile, 148)).max() <= TOLERANCE
    masks = np.stack([cv2.imread(str(real_data / "train" / "masks" / path.name), cv2.IMREAD_UNCHANGED) > 0 for path in paths])
    for mask, ours in zip(masks, pad_masks(masks)):
        assert (ours != (skimage_padded(mask.astype(np.float64), 148) > 0.7)).sum() <= 1


def test_the_fill_is_a_fixed_linear_map_of_the_outer_two_rings():
    border = biharmonic_border(148)
    geometry = border.geometry
    rows, cols = np.divmod(border.ring, 148)
    distance = np.minimum.reduce([rows - 23, cols - 23, 123 - rows, 123 - cols])
    assert border.ring.size == TILE_SIZE**2 - (TILE_SIZE - 4) ** 2 and distance.max() == 1
    assert border.unknown.size == 148**2 - TILE_SIZE**2
    # Constants are biharmonic, so each row of weights sums to one.
    assert np.allclose(border.weights.sum(axis=1), 1.0, atol=1e-9)
    assert geometry.padded_size == 148


def test_input_dtypes_and_a_single_tile():
    tile = smooth_tiles(1)[0]
    as_uint8 = np.round(tile * 255).astype(np.uint8)
    single = pad_tiles(as_uint8)
    assert single.shape == (148, 148)
    np.testing.assert_allclose(single, pad_tiles(as_uint8 / 255.0), atol=1e-6)
    assert (TileGeometry().unpad(single) == as_uint8 / np.float32(255)).all()


def test_chunking_does_not_change_the_result():
    tiles = smooth_tiles(7)
    # Only float32 rounding may differ: BLAS picks other kernels for other shapes.
    np.testing.assert_allclose(pad_tiles(tiles, chunk_size=3), pad_tiles(tiles, chunk_size=100), rtol=0, atol=TOLERANCE / 4)


def test_fill_stays_within_the_tiles_range():
    tiles = smooth_tiles(4) * 0.5 + 0.25
    padded = pad_tiles(tiles)
    assert (padded.min(axis=(1, 2)) >= tiles.min(axis=(1, 2)) - 1e-7).all()
    assert (padded.max(axis=(1, 2)) <= tiles.max(axis=(1, 2)) + 1e-7).all()


# --- copying modes ---------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "numpy_mode"), [("reflect", "reflect"), ("edge", "edge"), ("zero", "constant")])
def test_copying_modes_match_numpy_pad(mode, numpy_mode):
    tiles = np.random.default_rng(1).integers(0, 256, (2, TILE_SIZE, TILE_SIZE), dtype=np.uint8)
    geometry = TileGeometry(padded_size=160, crop_size=128)
    expected = np.pad(tiles, ((0, 0), *geometry.pad_width), mode=numpy_mode) / np.float32(255)
    np.testing.assert_array_equal(pad_tiles(tiles, 160, mode), expected)
    masks = tiles > 128
    np.testing.assert_array_equal(pad_masks(masks, 160, mode), np.pad(masks, ((0, 0), *geometry.pad_width), mode=numpy_mode))


def test_every_mode_is_covered():
    assert set(PADDING_MODES) == {"biharmonic", "reflect", "edge", "zero"}


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(100, 101), (2, 101, 100), (101,), (1, 1, 101, 101)])
def test_tile_of_the_wrong_shape_is_a_clear_error(shape):
    with pytest.raises(DataError, match=r"expected \(N, 101, 101\)"):
        pad_tiles(np.zeros(shape, np.uint8))


def test_target_size_below_the_tile_is_a_clear_error():
    with pytest.raises(GeometryError, match="padded_size=100: must be at least the tile size 101"):
        pad_tiles(np.zeros((1, 101, 101), np.uint8), 100)


def test_unknown_mode_and_threshold_are_clear_errors():
    with pytest.raises(SaltError, match="padding mode 'wrap'"):
        pad_tiles(np.zeros((1, 101, 101), np.uint8), 148, "wrap")
    with pytest.raises(SaltError, match="threshold"):
        pad_masks(np.zeros((1, 101, 101), bool), threshold=1.5)
