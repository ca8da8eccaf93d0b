"""The LightningDataModule: cached padded tiles, folds, augmentation and loaders."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from salt import rundir
from salt import synthetic as synthetic_tiles
from salt.data.channels import check_channels, stack_channels
from salt.data.device_batches import DeviceTiles, IndexBatches, augment_settings
from salt.data.prepared import PaddingSettings, PreparedTiles, prepare_tiles
from salt.errors import SaltError
from salt.folds import FoldSettings, folds_for
from salt.geometry import TileGeometry


AUGMENT_ON = ("device", "loader")


def training_transform(geometry: TileGeometry, augment: Mapping[str, Any]) -> A.Compose:
    """Random crop of the padded tile, horizontal flip, linear brightness/contrast."""
    return A.Compose(
        [
            A.RandomCrop(height=geometry.crop_size, width=geometry.crop_size),
            A.HorizontalFlip(p=float(augment.get("hflip", 0.5))),
            A.RandomBrightnessContrast(
                brightness_limit=float(augment.get("brightness", 0.2)),
                contrast_limit=float(augment.get("contrast", 0.2)),
                p=float(augment.get("brightness_contrast_p", 0.5)),
            ),
        ]
    )


def validation_transform(geometry: TileGeometry) -> A.Compose:
    """The centred crop, the same window prediction uses (`TileGeometry.crop`)."""
    return A.Compose([A.CenterCrop(height=geometry.crop_size, width=geometry.crop_size)])


class TileDataset(Dataset):
    """Samples of prepared tiles: {"image": [C, H, W] float32, "mask": [1, H, W] float32, "index": int}.

    `index` is the tile's position in the prepared split, so predictions map back to ids.
    Unlabelled tiles get an all-zero mask.
    """

    def __init__(self, tiles: PreparedTiles, indices: np.ndarray, transform: A.Compose, channels: Sequence[str]) -> None:
        self.tiles = tiles
        self.indices = np.asarray(indices)
        self.transform = transform
        self.channels = list(channels)
        self._stream: int | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def _seed_transform(self) -> None:
        """Tie the augmentations to torch's seed, so a run is reproducible from its seed.

        albumentations keeps its own random state, untouched by `seed_everything`. Each
        loader worker has its own torch seed (different per worker and, unless workers are
        persistent, per epoch); the main process has the global one.
        """
        worker = get_worker_info()
        stream = worker.seed if worker is not None else torch.initial_seed()
        if stream != self._stream:
            self.transform.set_random_seed(stream % 2**32)
            self._stream = stream

    def __getitem__(self, item: int) -> dict:
        self._seed_transform()
        index = int(self.indices[item])
        image = np.asarray(self.tiles.images[index], dtype=np.float32)
        masks = self.tiles.masks
        mask = np.zeros(image.shape, np.uint8) if masks is None else np.asarray(masks[index], dtype=np.uint8)
        sample = self.transform(image=image, mask=mask)
        channels = stack_channels(sample["image"], float(self.tiles.depths[index]), self.channels)
        return {
            "image": torch.from_numpy(channels),
            "mask": torch.from_numpy(sample["mask"][None].astype(np.float32)),
            "index": index,
        }


class TileDataModule(pl.LightningDataModule):
    """Training and validation tiles of one fold.

    Args:
        dir: competition-layout data directory.
        cache_dir: where padded tiles (and mosaics, folds) are cached.
        padding: the `data.padding` block (mode, size, crop_size, mask_threshold).
        histogram_match: map tiles onto the dataset's mean histogram before padding.
        channels: input channels (`salt.data.channels.CHANNELS`).
        folds: the `folds` block (`salt.folds.FoldSettings`: kind, k, seed, assembly).
        fold: the validation fold.
        batch_size, num_workers: loader settings.
        augment: hflip, brightness, contrast, brightness_contrast_p.
        augment_on: "device" (default): the fold's tiles live on the training device and
            each batch is cut, flipped, scaled and turned into channels there
            (`salt.data.device_batches`); "loader": per tile in albumentations inside
            loader workers, for transforms only albumentations has.
        seed: with augment_on=device, the order and augmentations of epoch e depend on
            (seed, e) alone, so a resumed run continues exactly.
        synthetic: generator settings; when given and `dir` holds no data yet, a synthetic
            dataset is generated there first (`data=synthetic`).
    """

    def __init__(
        self,
        dir: str,
        cache_dir: str,
        padding: Mapping[str, Any],
        folds: Mapping[str, Any],
        fold: int = 0,
        histogram_match: bool = False,
        channels: Sequence[str] = ("image",),
        batch_size: int = 16,
        num_workers: int = 2,
        augment: Mapping[str, Any] | None = None,
        augment_on: str = "device",
        seed: int = 0,
        synthetic: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.dir = Path(dir)
        self.cache_dir = Path(cache_dir)
        self.padding = PaddingSettings.from_config(padding)
        self.histogram_match = bool(histogram_match)
        self.channels = check_channels(channels)
        self.folds = FoldSettings.from_config(folds)
        self.fold = int(fold)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SaltError(f"data.batch_size={batch_size}: must be a whole number of tiles, at least 1")
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.augment = dict(augment or {})
        if augment_on not in AUGMENT_ON:
            raise SaltError(f"data.augment_on={augment_on}: unknown; choose from {', '.join(AUGMENT_ON)}")
        self.augment_on = augment_on
        if augment_on == "device":
            self.augment = augment_settings(self.augment)
        self.seed = int(seed)
        self.device_tiles: DeviceTiles | None = None
        self.synthetic = None if synthetic is None else dict(synthetic)
        self.train_set: TileDataset | None = None
        self.val_set: TileDataset | None = None
        self.fold_fingerprint: str | None = None  # of the fold table, after `setup`

    @property
    def geometry(self) -> TileGeometry:
        return self.padding.geometry

    def prepare_data(self) -> None:
        """Generate synthetic data if asked and absent; build every cache (once, in one process)."""
        if self.synthetic is not None and not (self.dir / "train.csv").is_file():
            params = self.synthetic
            tiles = synthetic_tiles.generate_tiles(params["seed"], params["sections"], params["section_cols"], params["section_rows"])
            synthetic_tiles.write_dataset(self.dir, tiles, params["seed"], params["train_fraction"], overwrite=True)
        train = self._prepared(verify=True)
        self._fold_of_each_tile(train, verify=True)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train = self._prepared(verify=False)
        folds = self._fold_of_each_tile(train, verify=False)
        in_fold = folds == self.fold
        if self.augment_on == "device":
            self.device_tiles = DeviceTiles(train.images, train.masks, train.depths, self.geometry, self.channels)
        self.train_set = TileDataset(train, np.flatnonzero(~in_fold), training_transform(self.geometry, self.augment), self.channels)
        self.val_set = TileDataset(train, np.flatnonzero(in_fold), validation_transform(self.geometry), self.channels)
        self.fold_fingerprint = rundir.fold_fingerprint(train.ids.tolist(), folds.tolist())
        if not len(self.val_set) or not len(self.train_set):
            raise SaltError(f"fold {self.fold}: leaves {len(self.train_set)} training and {len(self.val_set)} validation tiles")

    @property
    def validation_ids(self) -> np.ndarray:
        """Ids of the tiles held out for validation (after `setup`)."""
        return self.val_set.tiles.ids[self.val_set.indices]

    def train_dataloader(self) -> DataLoader:
        drop_last = len(self.train_set) > self.batch_size
        if self.augment_on == "device":
            return self._index_loader(self.train_set.indices, augment=self.augment, shuffle=True, drop_last=drop_last)
        return self._loader(self.train_set, shuffle=True, drop_last=drop_last)

    def val_dataloader(self) -> DataLoader:
        if self.augment_on == "device":
            return self._index_loader(self.val_set.indices, augment=None, shuffle=False, drop_last=False)
        return self._loader(self.val_set, shuffle=False, drop_last=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the device path, index batches become tiles here, on the training device."""
        if self.augment_on == "device" and "image" not in batch:
            return self.device_tiles.batch(batch)
        return batch

    def _index_loader(self, indices: np.ndarray, *, augment: Mapping[str, float] | None, shuffle: bool, drop_last: bool) -> DataLoader:
        trainer = self.trainer
        batches = IndexBatches(
            indices,
            self.batch_size,
            geometry=self.geometry,
            augment=augment,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=self.seed,
            epoch=lambda: trainer.current_epoch if trainer is not None else 0,
            rank=trainer.global_rank if trainer is not None else 0,
            world=trainer.world_size if trainer is not None else 1,
        )
        # Lightning warns that the length of an iterable dataset may be wrong across loader
        # workers; this one runs in the training process, where it is exact.
        warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined")
        # batch_size=None: the dataset yields whole batches; a few small index tensors need no workers.
        return DataLoader(batches, batch_size=None, num_workers=0)

    def _loader(self, dataset: TileDataset, *, shuffle: bool, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _prepared(self, *, verify: bool) -> PreparedTiles:
        prepared = prepare_tiles(
            self.dir,
            self.cache_dir,
            splits=["train"],
            padding=self.padding,
            histogram_match=self.histogram_match,
            verify=verify,
            log=lambda line: None,
        )
        return prepared["train"]

    def _fold_of_each_tile(self, train: PreparedTiles, *, verify: bool) -> np.ndarray:
        """(N,) fold of each prepared train tile, from the cached fold table."""
        table = folds_for(self.dir, self.cache_dir, self.folds, verify=verify, log=lambda line: None)
        fold_of = dict(zip(table.id.tolist(), table.fold.tolist()))
        return np.array([fold_of[tile_id] for tile_id in train.ids.tolist()], dtype=np.int64)
