import shutil

import cv2
import numpy as np
import pytest

from salt.data.tiles import load_split
from salt.errors import DataError


def test_synthetic_split_loads_as_compact_arrays(synthetic_dir, synthetic_tiles):
    train, test = load_split(synthetic_dir, "train"), load_split(synthetic_dir, "test")
    assert len(train) + len(test) == len(synthetic_tiles)
    assert train.images.shape == (len(train), 101, 101) and train.images.dtype == np.uint8
    assert train.masks.shape == train.images.shape and train.masks.dtype == bool
    assert test.masks is None and test.depths.dtype == np.int32
    by_id = {tile.id: tile for tile in synthetic_tiles}
    for i, tile_id in enumerate(train.ids):
        assert (train.images[i] == by_id[tile_id].image).all()
        assert (train.masks[i] == by_id[tile_id].mask).all()
        assert train.depths[i] == by_id[tile_id].depth
    subset = train.subset(train.coverage > 0)
    assert len(subset) == int((train.coverage > 0).sum()) and subset.masks.any(axis=(1, 2)).all()


def test_real_data_quirks(real_data):
    train = load_split(real_data, "train")
    assert len(train) == 3500 and train.images.dtype == np.uint8
    # 3-channel 8-bit PNGs read as their (identical) first channel
    raw = cv2.imread(str(real_data / "train" / "images" / f"{train.ids[5]}.png"), cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 3 and (train.images[5] == raw[..., 0]).all()
    # 16-bit masks holding 0/65535 become bool
    raw_mask = cv2.imread(str(real_data / "train" / "masks" / f"{train.ids[1]}.png"), cv2.IMREAD_UNCHANGED)
    assert raw_mask.dtype == np.uint16 and (train.masks[1] == (raw_mask == 65535)).all()
    assert int((train.images.reshape(3500, -1).max(axis=1) == 0).sum()) == 72  # all-black tiles
    assert (train.coverage > 0).sum() == 3500 - 1367
    assert train.coverage.max() < 1.0  # no tile is all salt


def first_train_id(data_dir):
    return (data_dir / "train.csv").read_text().splitlines()[1].split(",")[0]


def test_missing_dir(tmp_path):
    with pytest.raises(DataError, match="nowhere: not found"):
        load_split(tmp_path / "nowhere", "train")


def test_image_without_mask(synthetic_copy):
    (synthetic_copy / "train" / "masks" / f"{first_train_id(synthetic_copy)}.png").unlink()
    with pytest.raises(DataError, match="image without a mask"):
        load_split(synthetic_copy, "train")


def test_corrupt_png(synthetic_copy):
    tile_id = first_train_id(synthetic_copy)
    (synthetic_copy / "train" / "images" / f"{tile_id}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match=f"{tile_id}.png: not a readable image"):
        load_split(synthetic_copy, "train")


def test_wrong_size(synthetic_copy):
    tile_id = first_train_id(synthetic_copy)
    cv2.imwrite(str(synthetic_copy / "train" / "images" / f"{tile_id}.png"), np.zeros((100, 101), np.uint8))
    with pytest.raises(DataError, match=f"{tile_id}.png: image is 101x100 pixels, expected 101x101"):
        load_split(synthetic_copy, "train")


def test_malformed_rle_names_the_line(synthetic_copy):
    csv = synthetic_copy / "train.csv"
    lines = csv.read_text().splitlines()
    tile_id = lines[3].split(",")[0]
    lines[3] = f"{tile_id},5 3 1"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"train.csv, line 4 \\(id {tile_id}\\): malformed rle_mask: odd number"):
        load_split(synthetic_copy, "train")


def test_duplicate_ids(synthetic_copy):
    csv = synthetic_copy / "train.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(DataError, match=f"line {len(lines) + 1}: duplicate id {lines[1].split(',')[0]!r} \\(first on line 2\\)"):
        load_split(synthetic_copy, "train")


def test_id_in_csv_without_an_image(synthetic_copy):
    csv = synthetic_copy / "train.csv"
    csv.write_text(csv.read_text() + "abcdef0123,\n")
    with pytest.raises(DataError, match="abcdef0123.png: listed in the train table but the image is missing"):
        load_split(synthetic_copy, "train")


def test_test_id_in_sample_submission_without_an_image(synthetic_copy):
    sample = synthetic_copy / "sample_submission.csv"
    sample.write_text(sample.read_text() + "abcdef0123,1 1\n")
    with pytest.raises(DataError, match="abcdef0123.png: listed in the test table but the image is missing"):
        load_split(synthetic_copy, "test")


def test_image_not_in_train_csv(synthetic_copy):
    csv = synthetic_copy / "train.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    with pytest.raises(DataError, match=f"{lines[1].split(',')[0]}.png: tile has no row in"):
        load_split(synthetic_copy, "train")


def test_missing_depth_and_bad_header(synthetic_copy):
    depths = synthetic_copy / "depths.csv"
    depths.write_text(depths.read_text().replace("id,z", "id,depth"))
    with pytest.raises(DataError, match="header is 'id,depth', expected 'id,z'"):
        load_split(synthetic_copy, "test")
    depths.write_text("id,z\n")
    with pytest.raises(DataError, match="depths.csv: no depth for"):
        load_split(synthetic_copy, "test")


def test_missing_masks_dir(synthetic_copy):
    shutil.rmtree(synthetic_copy / "train" / "masks")
    with pytest.raises(DataError, match="masks: directory not found"):
        load_split(synthetic_copy, "train")
