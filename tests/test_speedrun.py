"""The GPU speedrun's pieces on a CPU: packed training tiles, the script end to end with
SMOKE=1, and the exported run rebuilt here and predicted."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from salt.data.pack import pack, read_packed, unpack
from salt.data.tiles import load_split
from salt.errors import DataError, SaltError
from salt.prediction.runs import find_runs, load_network
from salt.submission import validate_submission
from salt.training.transfer import export, rebuild

from conftest import REPO


def test_packed_tiles_unpack_to_the_same_training_split(synthetic_dir, tmp_path):
    packed = pack(synthetic_dir, tmp_path / "tiles.npz")
    original = load_split(synthetic_dir, "train")
    again = load_split(unpack(packed, tmp_path / "data"), "train")
    for tiles in (read_packed(packed), again):
        assert tiles.ids.tolist() == original.ids.tolist()
        assert np.array_equal(tiles.images, original.images)
        assert np.array_equal(tiles.masks, original.masks)
        assert np.array_equal(tiles.depths, original.depths)


def test_bad_packed_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="tiles.npz: packed tiles not found"):
        read_packed(tmp_path / "tiles.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: cannot be read as packed tiles"):
        read_packed(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="other.npz: not a packed tile file"):
        read_packed(tmp_path / "other.npz")


@pytest.fixture
def trained_run(compose_train, tmp_path):
    from salt.training.run import train

    train(compose_train("debug=limit", "trainer.max_epochs=1"))
    return tmp_path / "run"


def test_export_splits_half_precision_weights_and_rebuild_restores_them(trained_run, synthetic_dir, tmp_path):
    files = export(trained_run, tmp_path / "exported", max_mib=0.1)
    parts = [f for f in files if f.name.startswith("weights.fp16.")]
    assert len(parts) > 1 and all(f.stat().st_size <= 0.1 * 2**20 for f in parts)
    rebuilt = rebuild(tmp_path / "exported", tmp_path / "rebuilt", data_dir=str(synthetic_dir))
    original, restored = (load_network(find_runs([run])[0]).state_dict() for run in (trained_run, rebuilt))
    assert original.keys() == restored.keys()
    for key, value in original.items():
        if value.is_floating_point():
            assert restored[key].dtype == torch.float32
            assert torch.equal(restored[key], value.half().float())  # exactly the fp16 rounding
        else:
            assert torch.equal(restored[key], value)
    assert (rebuilt / "metrics" / "metrics.csv").is_file()
    # The validation ids travel too: the rebuilt run is scored out-of-fold on the same tiles.
    assert (rebuilt / "validation_ids.txt").read_text() == (trained_run / "validation_ids.txt").read_text()

    parts[0].write_bytes(parts[0].read_bytes()[:-1] + b"x")
    with pytest.raises(SaltError, match="weights.fp16.00: damaged or from another export"):
        rebuild(tmp_path / "exported", tmp_path / "again", data_dir=str(synthetic_dir))
    assert not (tmp_path / "again").exists()


@pytest.mark.slow
def test_speedrun_script_smoke_then_rebuild_and_predict(synthetic_dir, tmp_path):
    packed = pack(synthetic_dir, tmp_path / "tiles.npz")
    out = tmp_path / "out"
    env = {**os.environ, "SMOKE": "1", "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_speedrun.sh", str(packed), str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(path.name for path in out.iterdir())
    assert len(files) <= 8 and all((out / name).stat().st_size <= 16 * 2**20 for name in files)
    assert {"figures.md", "speedrun.log", "run.tar", "weights.fp16.00"} <= set(files)
    figures = (out / "figures.md").read_text()
    assert "best val/score" in figures and "seconds per epoch" in figures and "flip TTA" in figures

    run = tmp_path / "outputs" / "speedrun" / "tiny" / "fold_0"
    rebuild(out, run, data_dir=str(synthetic_dir))
    predicted = subprocess.run(
        [sys.executable, "predict.py", f"runs=[{run}]", f"out={tmp_path / 'predict'}", f"paths.cache_dir={tmp_path / 'cache'}", "oof.enabled=false", "pictures.largest=0"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    test_ids = [line.split(",")[0] for line in (synthetic_dir / "sample_submission.csv").read_text().splitlines()[1:]]
    validate_submission(tmp_path / "predict" / "submission.csv", test_ids)


def test_speedrun_script_without_its_data_says_so(tmp_path):
    result = subprocess.run(["bash", "benchmarks/gpu_speedrun.sh", str(tmp_path / "none.npz"), str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1 and "none.npz: packed training tiles not found" in result.stderr
