import numpy as np
import pytest
import torch

from salt.data.channels import CHANNELS, stack_channels
from salt.training.datamodule import TileDataModule
from salt.errors import SaltError

PADDING = {"mode": "biharmonic", "size": 148, "crop_size": 128, "mask_threshold": 0.7}


@pytest.fixture
def datamodule(synthetic_dir, tmp_path):
    def make(**options):
        settings = dict(
            dir=str(synthetic_dir),
            cache_dir=str(tmp_path / "cache"),
            padding=PADDING,
            folds={"kind": "random", "k": 3, "seed": 0},
            fold=1,
            channels=["image", "depth_ramp", "image_x_depth"],
            batch_size=4,
            num_workers=0,
        )
        settings.update(options)
        module = TileDataModule(**settings)
        module.prepare_data()
        module.setup("fit")
        return module

    return make


@pytest.mark.parametrize("augment_on", ["device", "loader"])
def test_fold_split_and_sample_shapes(datamodule, augment_on):
    module = datamodule(augment_on=augment_on)
    train, val = module.train_set, module.val_set
    assert set(train.indices).isdisjoint(val.indices)
    assert len(train) + len(val) == len(train.tiles)
    batch = module.on_after_batch_transfer(next(iter(module.val_dataloader())), 0)
    assert batch["image"].shape == (4, 3, 128, 128) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 1, 128, 128) and set(batch["mask"].unique().tolist()) <= {0.0, 1.0}


def test_validation_sample_is_the_centred_crop_with_its_tile(datamodule):
    module = datamodule(channels=["image"])
    sample = module.val_set[0]
    tiles, index, geometry = module.val_set.tiles, sample["index"], module.geometry
    assert np.allclose(sample["image"][0].numpy(), geometry.crop(tiles.images[index]))
    # the 101x101 tile inside the crop is the original tile, unchanged by padding
    tile = geometry.uncrop(sample["image"][0].numpy())
    assert np.allclose(tile, geometry.unpad(tiles.images[index]))
    assert (geometry.uncrop(sample["mask"][0].numpy()) == geometry.unpad(tiles.masks[index])).all()


def test_training_samples_crop_and_flip_image_and_mask_together(datamodule):
    module = datamodule(channels=["image"], augment={"hflip": 1.0, "brightness_contrast_p": 0.0}, augment_on="loader")
    train = module.train_set
    geometry = module.geometry
    salt_index = next(i for i, index in enumerate(train.indices) if train.tiles.masks[index].any())
    padded_image = train.tiles.images[train.indices[salt_index]]
    padded_mask = train.tiles.masks[train.indices[salt_index]]
    for _ in range(5):
        sample = train[salt_index]
        image, mask = sample["image"][0].numpy(), sample["mask"][0].numpy() > 0.5
        # find the crop origin: the flipped crop must occur in the padded tile
        flipped = image[:, ::-1]
        matches = [
            (r, c)
            for r in range(geometry.padded_size - geometry.crop_size + 1)
            for c in range(geometry.padded_size - geometry.crop_size + 1)
            if np.allclose(padded_image[r : r + 128, c : c + 128], flipped)
        ]
        assert len(matches) == 1
        r, c = matches[0]
        assert (padded_mask[r : r + 128, c : c + 128][:, ::-1] == mask).all()


def test_channels_are_computed_from_the_image():
    image = np.random.default_rng(0).random((8, 6)).astype(np.float32)
    stacked = stack_channels(image, 500.0, list(CHANNELS))
    assert stacked.shape == (len(CHANNELS), 8, 6)
    named = dict(zip(CHANNELS, stacked))
    assert np.array_equal(named["image"], image)
    assert named["depth_ramp"][0].max() == 0 and named["depth_ramp"][-1].min() == 1
    assert np.allclose(named["image_x_depth"], image * named["depth_ramp"])
    assert np.allclose(named["depth"], 0.5)
    assert np.allclose(named["coord_x"][:, 0], 0) and np.allclose(named["coord_x"][:, -1], 1)


def test_unknown_channel_is_refused(datamodule):
    with pytest.raises(SaltError, match="unknown channel 'sonar'; choose from image"):
        datamodule(channels=["image", "sonar"])
