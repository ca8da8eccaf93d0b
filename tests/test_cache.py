"""The array cache and `salt.prepare`: hits, misses, corrupt entries, and the command line."""

import json
import os

import numpy as np
import pytest
from conftest import run_module

from salt.data.cache import ArrayCache, CorruptCacheWarning, fingerprint_files
from salt.data.padding import pad_masks, pad_tiles
from salt.data.tiles import load_split
from salt.errors import CacheError, GeometryError
from salt.data.prepared import PaddingSettings, prepare_tiles

PARAMS = {"kind": "test", "size": 148}


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "ids": np.array(["a1", "b22", "c333"]),
        "images": rng.random((3, 5, 5), dtype=np.float32),
        "masks": rng.random((3, 5, 5)) > 0.5,
    }


def assert_same(loaded: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


# --- ArrayCache ------------------------------------------------------------------------


def test_store_then_load_round_trips_read_only(tmp_path):
    cache = ArrayCache(tmp_path)
    assert cache.load("tiles", PARAMS) is None
    assert_same(cache.store("tiles", PARAMS, arrays()), arrays())
    loaded = cache.load("tiles", PARAMS)
    assert_same(loaded, arrays())
    assert not loaded["images"].flags.writeable
    manifest = json.loads((cache.entry_dir("tiles", PARAMS) / "manifest.json").read_text())
    assert manifest["params"] == PARAMS


def test_changed_parameter_is_a_new_entry(tmp_path):
    cache = ArrayCache(tmp_path)
    cache.store("tiles", PARAMS, arrays())
    changed = {**PARAMS, "size": 160}
    assert cache.entry_dir("tiles", changed) != cache.entry_dir("tiles", PARAMS)
    assert cache.load("tiles", changed) is None
    # Key order is not part of the identity.
    assert cache.load("tiles", dict(reversed(PARAMS.items()))) is not None


def corrupt_truncate(entry):
    path = entry / "images.npy"
    path.write_bytes(path.read_bytes()[:-7])


def corrupt_flip_a_byte(entry):
    path = entry / "images.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_append(entry):
    with open(entry / "masks.npy", "ab") as handle:
        handle.write(b"\0" * 16)


def corrupt_header(entry):
    (entry / "ids.npy").write_bytes(b"not an array")


def corrupt_manifest(entry):
    (entry / "manifest.json").write_text("{ half")


def remove_manifest(entry):
    (entry / "manifest.json").unlink()


def remove_array(entry):
    (entry / "masks.npy").unlink()


@pytest.mark.parametrize(
    "damage",
    [corrupt_truncate, corrupt_flip_a_byte, corrupt_append, corrupt_header, corrupt_manifest, remove_manifest, remove_array],
)
def test_corrupt_entry_is_rebuilt_with_a_warning(tmp_path, damage):
    cache = ArrayCache(tmp_path)
    cache.store("tiles", PARAMS, arrays())
    damage(cache.entry_dir("tiles", PARAMS))
    builds = []
    with pytest.warns(CorruptCacheWarning, match="rebuilding"):
        loaded, hit = cache.get_or_build("tiles", PARAMS, lambda: builds.append(1) or arrays())
    assert not hit and builds == [1]
    assert_same(loaded, arrays())
    loaded, hit = cache.get_or_build("tiles", PARAMS, lambda: pytest.fail("should not rebuild"))
    assert hit


def test_cache_inside_the_data_dir_is_refused(tmp_path):
    with pytest.raises(CacheError, match="inside the data dir"):
        ArrayCache(tmp_path / "data" / "cache", forbid_inside=[tmp_path / "data"])
    ArrayCache(tmp_path / "cache", forbid_inside=[tmp_path / "data"])


def test_unwritable_cache_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CacheError, match="cannot write"):
        ArrayCache(blocker / "cache").store("tiles", PARAMS, arrays())


def test_fingerprint_follows_the_files(tmp_path):
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "a.png").write_bytes(b"123")
    (tmp_path / "table.csv").write_text("id\n")
    first = fingerprint_files(tmp_path, ["split", "table.csv"])
    assert fingerprint_files(tmp_path, ["table.csv", "split"]) == first
    (tmp_path / "split" / "b.png").write_bytes(b"4")
    second = fingerprint_files(tmp_path, ["split", "table.csv"])
    assert second != first
    os.utime(tmp_path / "split" / "a.png", ns=(1, 1))
    assert fingerprint_files(tmp_path, ["split", "table.csv"]) != second


# --- prepare ---------------------------------------------------------------------------


SMALL = PaddingSettings(size=112, crop_size=104)  # a small frame keeps the solve quick


def test_prepare_builds_then_loads_and_matches_padding(synthetic_dir, tmp_path):
    lines = []
    first = prepare_tiles(synthetic_dir, tmp_path / "cache", padding=SMALL, log=lines.append)
    assert set(first) == {"train", "test"}
    assert any("stored in" in line for line in lines) and not any("from cache" in line for line in lines)

    train = load_split(synthetic_dir, "train")
    np.testing.assert_array_equal(first["train"].ids, train.ids)
    np.testing.assert_array_equal(first["train"].depths, train.depths)
    np.testing.assert_allclose(first["train"].images, pad_tiles(train.images, 112), atol=1e-6)
    np.testing.assert_array_equal(first["train"].masks, pad_masks(train.masks, 112))
    assert first["test"].masks is None and first["train"].geometry.crop_size == 104

    lines.clear()
    second = prepare_tiles(synthetic_dir, tmp_path / "cache", padding=SMALL, log=lines.append)
    assert sum("from cache" in line for line in lines) == 2 and not any("read tiles" in line for line in lines)
    np.testing.assert_array_equal(second["test"].images, first["test"].images)


def test_prepare_builds_a_new_entry_for_a_changed_parameter(synthetic_dir, tmp_path):
    prepare_tiles(synthetic_dir, tmp_path / "cache", splits=["train"], padding=SMALL, log=lambda _: None)
    lines = []
    reflect = PaddingSettings(mode="reflect", size=112, crop_size=104)
    result = prepare_tiles(synthetic_dir, tmp_path / "cache", splits=["train"], padding=reflect, log=lines.append)
    assert any("stored in" in line for line in lines)
    assert len(list((tmp_path / "cache" / "tiles-train").iterdir())) == 2
    train = load_split(synthetic_dir, "train")
    np.testing.assert_array_equal(result["train"].images, pad_tiles(train.images, 112, "reflect"))


def test_prepare_with_histogram_matching(synthetic_dir, tmp_path):
    lines = []
    result = prepare_tiles(synthetic_dir, tmp_path / "cache", padding=SMALL, histogram_match=True, log=lines.append)
    assert any(line.startswith("mean histogram") and "built" in line for line in lines)
    plain = prepare_tiles(synthetic_dir, tmp_path / "cache", padding=SMALL, log=lambda _: None)
    assert not np.array_equal(result["train"].images, plain["train"].images)
    lines.clear()
    prepare_tiles(synthetic_dir, tmp_path / "cache", padding=SMALL, histogram_match=True, log=lines.append)
    assert any(line.startswith("mean histogram") and "from cache" in line for line in lines)


def test_prepare_rebuilds_a_corrupt_entry(synthetic_dir, tmp_path):
    first = prepare_tiles(synthetic_dir, tmp_path / "cache", splits=["test"], padding=SMALL, log=lambda _: None)
    expected = np.array(first["test"].images)
    (entry,) = (tmp_path / "cache" / "tiles-test").iterdir()
    corrupt_flip_a_byte(entry)
    with pytest.warns(CorruptCacheWarning):
        again = prepare_tiles(synthetic_dir, tmp_path / "cache", splits=["test"], padding=SMALL, log=lambda _: None)
    np.testing.assert_array_equal(again["test"].images, expected)


def test_prepare_sees_changed_data(synthetic_copy, tmp_path):
    prepare_tiles(synthetic_copy, tmp_path / "cache", splits=["test"], padding=SMALL, log=lambda _: None)
    image = next((synthetic_copy / "test" / "images").glob("*.png"))
    os.utime(image, ns=(10**18, 10**18))
    lines = []
    prepare_tiles(synthetic_copy, tmp_path / "cache", splits=["test"], padding=SMALL, log=lines.append)
    assert any("stored in" in line for line in lines)


def test_bad_padding_settings_are_clear_errors():
    with pytest.raises(GeometryError, match="padded_size=100"):
        PaddingSettings(size=100)
    with pytest.raises(GeometryError, match="data.padding.mode='wrap'"):
        PaddingSettings(mode="wrap")
    with pytest.raises(GeometryError, match="mask_threshold"):
        PaddingSettings(mask_threshold=1.0)


def test_command_line_builds_then_reports_errors_in_one_line(synthetic_dir, tmp_path):
    cache = tmp_path / "cache"
    common = [f"data.dir={synthetic_dir}", f"paths.cache_dir={cache}", "data.padding.size=112", "data.padding.crop_size=104"]
    done = run_module("salt.prepare", *common)
    assert done.returncode == 0, done.stderr
    assert "train: padded tiles" in done.stdout and "test: padded tiles" in done.stdout
    again = run_module("salt.prepare", *common)
    assert again.returncode == 0 and again.stdout.count("from cache") == 2

    bad = run_module("salt.prepare", *common, "data.padding.size=99")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == "error: padded_size=99: must be at least the tile size 101"
    wrong_type = run_module("salt.prepare", *common, "data.padding.size=big")
    assert wrong_type.returncode == 1
    assert wrong_type.stderr.strip().splitlines()[-1] == "error: data.padding.size='big': must be an integer"
    inside = run_module("salt.prepare", f"data.dir={synthetic_dir}", f"paths.cache_dir={synthetic_dir / 'cache'}")
    assert inside.returncode == 1 and "inside the data dir" in inside.stderr


def test_fingerprint_sees_a_table_edit_that_keeps_size_and_time(tmp_path):
    table = tmp_path / "depths.csv"
    table.write_text("id,z\na,100\n")
    stat = table.stat()
    first = fingerprint_files(tmp_path, ["depths.csv"])
    table.write_text("id,z\na,900\n")  # same size
    os.utime(table, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time
    assert fingerprint_files(tmp_path, ["depths.csv"]) != first


def test_a_killed_store_leaves_a_temporary_that_the_next_store_removes(tmp_path):
    import socket
    import subprocess
    import sys

    # A temporary entry as a store killed half-way leaves it: named after a process that is gone.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / "tiles" / f".somekey.tmp-{socket.gethostname()}-{gone}-abc123"
    (stale / "images.npy").parent.mkdir(parents=True)
    (stale / "images.npy").write_bytes(b"half an array")
    live = tmp_path / "tiles" / f".otherkey.tmp-{socket.gethostname()}-{os.getpid()}-def456"
    live.mkdir()  # a store still under way in a live process: kept
    ArrayCache(tmp_path).store("tiles", PARAMS, arrays())
    assert not stale.exists()
    assert live.exists()
