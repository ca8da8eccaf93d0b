"""Histogram matching to the mean histogram, checked against skimage tile by tile."""

import cv2
import numpy as np
import pytest
from skimage.exposure import match_histograms as skimage_match

from salt.data.histogram import constant_tiles, match_histograms, mean_histogram, tile_histograms
from salt.errors import DataError


def seismic_like(count: int, seed: int = 0) -> np.ndarray:
    """(count ≥ 5, 101, 101) uint8 tiles of differing brightness distributions; tiles 1 and 4 are constant."""
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.3, 3.0, size=(count, 1, 1))
    tiles = np.round(255 * rng.random((count, 101, 101)) ** gamma).astype(np.uint8)
    tiles[1] = 0  # a black no-data tile
    tiles[4] = 77
    return tiles


def test_tile_histograms_count_every_level():
    tiles = seismic_like(9)
    counts = tile_histograms(tiles)
    assert counts.shape == (9, 256) and (counts.sum(axis=1) == 101 * 101).all()
    for tile, row in zip(tiles, counts):
        np.testing.assert_array_equal(row, np.bincount(tile.ravel(), minlength=256))


def test_mean_histogram_leaves_constant_tiles_out():
    tiles = seismic_like(9)
    assert constant_tiles(tiles).tolist() == [i in (1, 4) for i in range(9)]
    varied = tiles[~constant_tiles(tiles)]
    expected = np.mean([np.bincount(t.ravel(), minlength=256) / t.size for t in varied], axis=0)
    np.testing.assert_allclose(mean_histogram(tiles), expected, rtol=1e-12, atol=1e-15)
    assert mean_histogram(tiles).sum() == pytest.approx(1.0)


def test_matching_equals_skimage_against_the_pooled_tiles():
    # The mean of per-tile normalised histograms (equal pixel counts) is the histogram of
    # all those tiles pooled, so skimage matching each tile to the pooled pixels is an
    # independent reference.
    tiles = seismic_like(12, seed=3)
    reference = mean_histogram(tiles)
    pooled = np.concatenate(list(tiles[~constant_tiles(tiles)]))
    matched = match_histograms(tiles, reference)
    assert matched.shape == tiles.shape and matched.dtype == np.float32
    for i, tile in enumerate(tiles):
        if i in (1, 4):
            continue
        expected = skimage_match(tile, pooled) / 255.0
        assert np.abs(matched[i] - expected).max() < 1e-6


def test_constant_tiles_are_left_unchanged():
    tiles = seismic_like(6)
    matched = match_histograms(tiles, mean_histogram(tiles))
    assert (matched[1] == 0).all()
    assert (matched[4] == np.float32(77) / np.float32(255)).all()


def test_matched_tiles_share_the_reference_distribution():
    tiles = seismic_like(8, seed=5)
    reference = mean_histogram(tiles)
    matched = match_histograms(tiles, reference)
    reference_median = np.searchsorted(np.cumsum(reference), 0.5)
    for i in (0, 2, 3, 5):
        assert abs(np.median(matched[i]) * 255 - reference_median) <= 3


def test_matching_to_a_histogram_of_one_level_gives_that_level():
    tiles = seismic_like(5)
    reference = np.zeros(256)
    reference[200] = 5.0
    assert np.allclose(match_histograms(tiles, reference)[0], 200 / 255)


def test_real_tiles_match_like_skimage(real_data):
    paths = sorted((real_data / "train" / "images").glob("*.png"))[:40]
    tiles = np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in paths])
    reference = mean_histogram(tiles)
    pooled = np.concatenate(list(tiles[~constant_tiles(tiles)]))
    matched = match_histograms(tiles, reference)
    for i in np.flatnonzero(~constant_tiles(tiles))[:5]:
        assert np.abs(matched[i] - skimage_match(tiles[i], pooled) / 255.0).max() < 1e-6


def test_bad_input_is_a_clear_error():
    with pytest.raises(DataError, match="expected uint8"):
        tile_histograms(np.zeros((2, 101, 101), np.float32))
    with pytest.raises(DataError, match="expected uint8"):
        match_histograms(np.zeros((101, 100), np.uint8), np.ones(256))
    with pytest.raises(DataError, match="all 3 tiles are constant"):
        mean_histogram(np.zeros((3, 101, 101), np.uint8))
    with pytest.raises(DataError, match="reference histogram"):
        match_histograms(seismic_like(5), np.ones(255))
    with pytest.raises(DataError, match="reference histogram"):
        match_histograms(seismic_like(5), np.zeros(256))
