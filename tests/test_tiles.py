import os
import pathlib
import shutil
import warnings

import cv2
import numpy as np
import pytest

from salt import rle
from salt.data import tiles
from salt.data.tiles import MaskMismatchWarning, load_split
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
    with warnings.catch_warnings():
        warnings.simplefilter("error", MaskMismatchWarning)  # its train.csv agrees with its PNGs
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
    rows = len(csv.read_text().splitlines())  # header + rows, so rows after the append
    csv.write_text(csv.read_text() + "abcdef0123,\n")
    with pytest.raises(DataError, match=f"train/images: 1 of {rows} tiles listed in train.csv have no image: abcdef0123$"):
        load_split(synthetic_copy, "train")


def test_test_ids_in_sample_submission_without_images_are_counted(synthetic_copy):
    sample = synthetic_copy / "sample_submission.csv"
    ids = [line.split(",")[0] for line in sample.read_text().splitlines()[1:]]
    for tile_id in ids[:7]:
        (synthetic_copy / "test" / "images" / f"{tile_id}.png").unlink()
    few = ", ".join(ids[:5])
    with pytest.raises(DataError, match=f"test/images: 7 of {len(ids)} tiles listed in sample_submission.csv have no image: {few}, \\.\\.\\.$"):
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


def test_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(DataError, match="data dir .*data: is a file, not a directory$"):
        load_split(tmp_path / "data", "train")


def test_zero_byte_png(synthetic_copy):
    tile_id = first_train_id(synthetic_copy)
    (synthetic_copy / "train" / "masks" / f"{tile_id}.png").write_bytes(b"")
    with pytest.raises(DataError, match=f"masks/{tile_id}.png: empty file \\(0 bytes\\)$"):
        load_split(synthetic_copy, "train")


def test_opencv_error_is_not_a_readable_image(synthetic_copy, monkeypatch):
    def fail(*args):
        raise cv2.error("OpenCV(5.0.0) loadsave.cpp: error: (-215:Assertion failed)")

    monkeypatch.setattr(tiles.cv2, "imdecode", fail)
    with pytest.raises(DataError, match="images/.*\\.png: not a readable image"):
        load_split(synthetic_copy, "test")


def test_broken_symlink_image(synthetic_copy):
    tile_id = first_train_id(synthetic_copy)
    image = synthetic_copy / "train" / "images" / f"{tile_id}.png"
    image.unlink()
    image.symlink_to(synthetic_copy / "elsewhere" / "gone.png")
    with pytest.raises(DataError, match=f"{tile_id}.png: broken symbolic link \\(target .*elsewhere/gone.png missing\\)$"):
        load_split(synthetic_copy, "train")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_folder_chmod(synthetic_copy):
    image = synthetic_copy / "train" / "images" / f"{first_train_id(synthetic_copy)}.png"
    image.chmod(0)
    with pytest.raises(DataError, match=f"{image.name}: permission denied$"):
        load_split(synthetic_copy, "train")
    folder = synthetic_copy / "test" / "images"
    folder.chmod(0)
    try:
        with pytest.raises(DataError, match="test/images: permission denied$"):
            load_split(synthetic_copy, "test")
    finally:
        folder.chmod(0o755)  # or tmp_path cannot be cleaned up


def test_unreadable_file_and_folder(synthetic_copy, monkeypatch):
    """The same as with chmod 000, for a run as root: the reads raise PermissionError."""
    image = synthetic_copy / "train" / "images" / f"{first_train_id(synthetic_copy)}.png"
    folder = synthetic_copy / "test" / "images"
    read_bytes, listdir = pathlib.Path.read_bytes, os.listdir

    def denied(real):
        def call(target):
            if pathlib.Path(target) in (image, folder):
                raise PermissionError(13, "Permission denied", str(target))
            return real(target)

        return call

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied(read_bytes))
    monkeypatch.setattr(tiles.os, "listdir", denied(listdir))
    with pytest.raises(DataError, match=f"{image.name}: permission denied$"):
        load_split(synthetic_copy, "train")
    with pytest.raises(DataError, match="test/images: permission denied$"):
        load_split(synthetic_copy, "test")


@pytest.mark.parametrize("depth", ["inf", "-inf", "nan", "1e30"])
def test_depth_that_is_not_a_finite_int32(synthetic_copy, depth):
    path = synthetic_copy / "depths.csv"
    lines = path.read_text().splitlines()
    tile_id = lines[2].split(",")[0]
    lines[2] = f"{tile_id},{depth}"
    path.write_text("\n".join(lines) + "\n")
    problem = "is out of range" if depth == "1e30" else "is not a finite number"
    with pytest.raises(DataError, match=f"depths.csv, line 3: depth '{depth}' of id {tile_id} {problem}$"):
        load_split(synthetic_copy, "test")


def test_rle_that_disagrees_with_the_mask_png_warns_once_and_the_png_wins(synthetic_copy):
    path = synthetic_copy / "train.csv"
    lines = path.read_text().splitlines()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the untouched copy agrees
        before = load_split(synthetic_copy, "train")
    changed = [line.split(",")[0] for line in lines[1:4]]
    for i in (1, 2, 3):  # a salt pixel more, or one less, than the PNG
        tile_id, encoded = lines[i].split(",")
        lines[i] = f"{tile_id},{rle.encode(rle.decode(encoded) ^ (np.arange(101 * 101).reshape(101, 101) == 0))}"
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(MaskMismatchWarning) as caught:
        after = load_split(synthetic_copy, "train")
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: rle_mask of 3 of {len(lines) - 1} tiles disagrees with its mask PNG in "
        f"{synthetic_copy / 'train' / 'masks'}: {', '.join(changed)}; using the PNG masks"
    )
    assert (after.masks == before.masks).all()
