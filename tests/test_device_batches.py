"""Tiles augmented as whole batches on the training device (salt.data.device_batches),
against hand-computed crops and flips, the brightness/contrast formula, the per-tile
channels, and the statistics of the albumentations loader path they replace."""

import numpy as np
import pytest
import torch

from salt.data.channels import CHANNELS, stack_channel_batch, stack_channels
from salt.training.datamodule import TileDataset, training_transform
from salt.data.device_batches import DeviceTiles, IndexBatches, augment_settings, crop_offsets, cut_crops, draw_augmentations, mirrored
from salt.errors import SaltError
from salt.geometry import TileGeometry
from salt.data.prepared import PreparedTiles

GEOMETRY = TileGeometry(148, 128)
SPAN = GEOMETRY.padded_size - GEOMETRY.crop_size + 1  # crop origins 0 .. 20


def position_tiles(count: int) -> np.ndarray:
    """(count, S, S) tiles whose pixel values encode (tile, row, column), all distinct."""
    size = GEOMETRY.padded_size
    tile, row, col = np.meshgrid(np.arange(count), np.arange(size), np.arange(size), indexing="ij")
    return ((tile * size + row) * size + col).astype(np.float32) / (count * size * size)


def test_crops_cut_from_the_mirrored_store_equal_numpy_slicing():
    rng = np.random.default_rng(0)
    padded = rng.random((6, 148, 148)).astype(np.float32)
    index = torch.tensor([0, 3, 3, 5, 1])
    row = torch.tensor([0, 20, 7, 13, 20])
    col = torch.tensor([20, 0, 7, 2, 20])
    flip = torch.tensor([False, True, False, True, True])
    offsets = crop_offsets(index, row, col, flip, len(padded), 148, 128)
    result = cut_crops(mirrored(torch.from_numpy(padded)), offsets, 128).numpy()
    for b in range(len(index)):
        expected = padded[index[b], row[b] : row[b] + 128, col[b] : col[b] + 128]
        expected = expected[:, ::-1] if flip[b] else expected
        assert np.array_equal(result[b], expected)


def test_brightness_contrast_is_the_clipped_linear_map_and_the_mask_follows_the_image():
    rng = np.random.default_rng(1)
    images = rng.random((4, 148, 148)).astype(np.float32)
    masks = images > 0.6  # a mask that is a function of the pixels it covers
    tiles = DeviceTiles(images, masks, np.array([100, 200, 300, 400]), GEOMETRY, ["image"])
    batch = {
        "index": torch.tensor([2, 0, 1]),
        "row": torch.tensor([3, 0, 20]),
        "col": torch.tensor([11, 20, 5]),
        "flip": torch.tensor([True, False, True]),
        "alpha": torch.tensor([1.15, 0.85, 1.0]),
        "beta": torch.tensor([0.1, -0.05, 0.0]),
    }
    out = tiles.batch(batch)
    assert out["image"].shape == (3, 1, 128, 128) and out["mask"].shape == (3, 1, 128, 128)
    for b in range(3):
        i, r, c = int(batch["index"][b]), int(batch["row"][b]), int(batch["col"][b])
        crop = images[i, r : r + 128, c : c + 128]
        crop = crop[:, ::-1] if batch["flip"][b] else crop
        expected = np.clip(crop * float(batch["alpha"][b]) + float(batch["beta"][b]), 0, 1)
        assert np.allclose(out["image"][b, 0].numpy(), expected, atol=1e-6)
        assert np.array_equal(out["mask"][b, 0].numpy() > 0.5, crop > 0.6)


def test_validation_batch_is_the_centred_crop():
    images = position_tiles(3)
    masks = images > 0.5
    tiles = DeviceTiles(images, masks, np.zeros(3), GEOMETRY, ["image"])
    out = tiles.batch({"index": torch.tensor([2, 1])})
    for b, i in enumerate([2, 1]):
        assert np.array_equal(out["image"][b, 0].numpy(), GEOMETRY.crop(images[i]))
        assert np.array_equal(out["mask"][b, 0].numpy() > 0.5, GEOMETRY.crop(masks[i]))


def test_batch_channels_equal_the_per_tile_channels():
    rng = np.random.default_rng(2)
    images = rng.random((5, 128, 128)).astype(np.float32)
    images[3] = 0.0  # a black tile: cumsum must not divide by zero
    depths = np.array([50, 959, 400, 123, 700], dtype=np.float32)
    names = list(CHANNELS)
    batch = stack_channel_batch(torch.from_numpy(images), torch.from_numpy(depths), names).numpy()
    for b in range(5):
        assert np.allclose(batch[b], stack_channels(images[b], float(depths[b]), names), atol=1e-6)


def test_augmented_batch_channels_equal_the_per_tile_channels_of_each_crop():
    # The image channel is written in place inside the batch, wherever it stands in the list.
    rng = np.random.default_rng(3)
    images = rng.random((3, 148, 148)).astype(np.float32)
    depths = np.array([80, 500, 900], dtype=np.float32)
    names = ["cumsum", "depth", "image_x_depth", "image", "coord_x", "depth_ramp"]
    tiles = DeviceTiles(images, None, depths, GEOMETRY, names)
    batch = {
        "index": torch.tensor([1, 2, 0]),
        "row": torch.tensor([5, 20, 0]),
        "col": torch.tensor([0, 9, 20]),
        "flip": torch.tensor([True, False, True]),
        "alpha": torch.tensor([0.9, 1.0, 1.2]),
        "beta": torch.tensor([0.05, 0.0, -0.1]),
    }
    out = tiles.batch(batch)["image"].numpy()
    for b in range(3):
        i, r, c = int(batch["index"][b]), int(batch["row"][b]), int(batch["col"][b])
        crop = images[i, r : r + 128, c : c + 128]
        crop = crop[:, ::-1] if batch["flip"][b] else crop
        augmented = np.clip(crop * float(batch["alpha"][b]) + float(batch["beta"][b]), 0, 1).astype(np.float32)
        assert np.allclose(out[b], stack_channels(augmented, float(depths[i]), names), atol=1e-5)


def loader_path_samples(images: np.ndarray, augment: dict, count: int) -> np.ndarray:
    """`count` training crops of tile 0 through the albumentations path."""
    tiles = PreparedTiles(np.array(["a"]), np.array([500]), images, np.zeros_like(images, bool), GEOMETRY)
    dataset = TileDataset(tiles, np.array([0]), training_transform(GEOMETRY, augment), ["image"])
    torch.manual_seed(0)
    return np.stack([dataset[0]["image"][0].numpy() for _ in range(count)])


def device_path_samples(images: np.ndarray, augment: dict, count: int) -> np.ndarray:
    params = draw_augmentations(count, GEOMETRY, augment_settings(augment), torch.Generator().manual_seed(0))
    tiles = DeviceTiles(images, None, np.array([500]), GEOMETRY, ["image"])
    return tiles.batch({"index": torch.zeros(count, dtype=torch.long), **params})["image"][:, 0].numpy()


def crop_geometry(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop origin rows, columns and flips recovered from crops of `position_tiles(1)`."""
    size = GEOMETRY.padded_size
    corner = np.rint(np.minimum(crops[:, 0, 0], crops[:, 0, -1]) * size * size).astype(int)  # top-left
    flipped = crops[:, 0, 0] > crops[:, 0, -1]
    return corner // size, corner % size, flipped


def test_crop_and_flip_distribution_matches_the_loader_path():
    images = position_tiles(1)
    augment = {"hflip": 0.5, "brightness_contrast_p": 0.0}
    for crops in (loader_path_samples(images, augment, 800), device_path_samples(images, augment, 800)):
        rows, cols, flipped = crop_geometry(crops)
        for origins in (rows, cols):
            counts = np.bincount(origins, minlength=SPAN)
            assert len(counts) == SPAN and counts.min() > 0  # every origin 0..20, none beyond
            assert abs(origins.mean() - (SPAN - 1) / 2) < 1.0  # uniform: mean 10
        assert 0.42 < flipped.mean() < 0.58


def test_brightness_contrast_distribution_matches_the_loader_path():
    # A flat tile at 0.5 becomes 0.5·alpha + beta: its value shows each draw of the pair.
    images = np.full((1, 148, 148), 0.5, np.float32)
    augment = {"hflip": 0.0, "brightness": 0.2, "contrast": 0.2, "brightness_contrast_p": 0.5}
    stats = []
    for crops in (loader_path_samples(images, augment, 1500), device_path_samples(images, augment, 1500)):
        values = crops[:, 0, 0]
        changed = values[~np.isclose(values, 0.5, atol=1e-7)]
        assert changed.min() >= 0.5 * 0.8 - 0.2 - 1e-6 and changed.max() <= 0.5 * 1.2 + 0.2 + 1e-6
        stats.append((len(changed) / len(values), changed.mean(), changed.std()))
    (share_a, mean_a, std_a), (share_b, mean_b, std_b) = stats
    # alpha - 1 ~ U(-0.2, 0.2), beta ~ U(-0.2, 0.2): std of 0.5·alpha + beta is 0.129
    assert abs(share_a - 0.5) < 0.05 and abs(share_b - 0.5) < 0.05
    assert abs(mean_a - 0.5) < 0.015 and abs(mean_b - 0.5) < 0.015
    assert abs(std_a - 0.129) < 0.01 and abs(std_b - 0.129) < 0.01


def test_each_epoch_visits_every_tile_once_in_an_order_set_by_seed_and_epoch():
    indices = np.arange(100, 137)
    epoch = {"now": 0}

    def batches(seed: int, **options) -> list[dict]:
        source = IndexBatches(
            indices, 8, geometry=GEOMETRY, augment=augment_settings({}), shuffle=True, seed=seed, epoch=lambda: epoch["now"], **options
        )
        listed = list(source)
        assert len(listed) == len(source)
        return listed

    first = batches(seed=3)
    order = torch.cat([b["index"] for b in first]).tolist()
    assert sorted(order) == indices.tolist()  # every tile once, the short last batch kept
    assert order != indices.tolist()
    again = batches(seed=3)
    assert all(torch.equal(a[key], b[key]) for a, b in zip(first, again) for key in a)
    assert torch.cat([b["index"] for b in batches(seed=4)]).tolist() != order
    epoch["now"] = 1
    assert torch.cat([b["index"] for b in batches(seed=3)]).tolist() != order
    dropped = batches(seed=3, drop_last=True)
    assert len(dropped) == 4 and all(len(b["index"]) == 8 for b in dropped)
    ranks = [torch.cat([b["index"] for b in batches(seed=3, rank=r, world=2)]).tolist() for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 18 and not set(ranks[0]) & set(ranks[1])


@pytest.mark.parametrize(
    "augment, message",
    [
        ({"hflip": 1.5}, "data.augment.hflip=1.5: a probability"),
        ({"contrast": -0.1}, "data.augment.contrast=-0.1: a limit"),
        ({"rotate": 10}, "data.augment.rotate: unknown key"),
    ],
)
def test_bad_augment_settings_are_one_line(augment, message):
    with pytest.raises(SaltError, match=message):
        augment_settings(augment)
