"""Fault injection: processes killed with SIGKILL at chosen points, a full disk under each
writer, damaged checkpoints. After each fault nothing may be half-written under a final
name, and the rerun must recover: a resumed training run gives, epoch by epoch, the
metrics of the uninterrupted run; a rerun of `salt.prepare` or `predict.py` gives the
same arrays and the same submission.

Kills are planted with `tests/faults.py` (SIGKILL at the Nth call of a function, so no
cleanup handler runs); a full disk is an ENOSPC raised when a writer flushes its file.
Each test records its fault; the session prints the summary line (conftest.py).
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import faults
import salt.files
from conftest import FAST_TRAINING, REPO
from salt.rundir import read_metrics_csv

pytestmark = pytest.mark.slow

# Three short epochs with dropout, augmentation and a per-step schedule: everything a
# resume must restore. Two batches per epoch.
TRAINING = [
    *FAST_TRAINING,
    "trainer.max_epochs=3",
    "callbacks.early_stopping=null",
    "callbacks.validation_tiles=null",
    "scheduler=warmup_cosine",
    "model.block_dropout=0.2",
]
RUN = Path("train") / "tiny" / "fold_0"
COMPARED = ("val/loss", "val/score", "train/loss")


def train_args(out: Path, data: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "train.py",
        "data=synthetic",
        f"data.dir={data}",
        f"paths.output_dir={out}",
        f"paths.cache_dir={cache}",
        *TRAINING,
        *extra,
    ]


def run(args: list[str], *, kill_on: str | None = None, call: int = 1, after: bool = False) -> subprocess.CompletedProcess:
    """`python ARGS...`, or through tests/faults.py with a kill planted."""
    prefix = [sys.executable]
    if kill_on is not None:
        prefix += [str(REPO / "tests" / "faults.py"), "--kill-on", kill_on, "--call", str(call), *(["--after"] if after else []), "--"]
    return subprocess.run([*prefix, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synthetic_dir) -> dict:
    """The reference: the same training run, never interrupted."""
    root = tmp_path_factory.mktemp("uninterrupted")
    result = run(train_args(root / "outputs", synthetic_dir, root / "cache"))
    assert result.returncode == 0, result.stderr[-3000:]
    return read_metrics_csv(root / "outputs" / RUN / "metrics" / "metrics.csv")


# Where a training run is killed: (function, call, after). Two batches and one or two
# checkpoint saves per epoch.
TRAINING_KILLS = {
    "mid-epoch": ("salt.training.module:SaltSegmentation.training_step", 4, False),
    "after the checkpoint, before the epoch's training metrics": ("pytorch_lightning.callbacks:ModelCheckpoint.on_train_epoch_end", 3, False),
    "while writing a checkpoint": ("torch:save", 3, True),
    "while writing metrics.csv": ("csv:DictWriter.writerows", 4, True),
}


@pytest.mark.parametrize("point", list(TRAINING_KILLS))
def test_training_killed_anywhere_resumes_exactly(point, uninterrupted, synthetic_dir, tmp_path):
    kill_on, call, after = TRAINING_KILLS[point]
    args = train_args(tmp_path / "outputs", synthetic_dir, tmp_path / "cache")
    run_dir = tmp_path / "outputs" / RUN
    killed = run(args, kill_on=kill_on, call=call, after=after)
    assert killed.returncode == -9, killed.stderr[-3000:]
    damaged = faults.half_written(run_dir)

    resumed = run(args)
    series = read_metrics_csv(run_dir / "metrics" / "metrics.csv")
    recovered = resumed.returncode == 0 and all(series.get(name) == uninterrupted[name] for name in COMPARED)
    leftovers = faults.temporaries(run_dir)
    faults.record("kill -9 (train)", recovered and not leftovers, len(damaged))
    assert damaged == []
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in COMPARED:
        assert series[name] == uninterrupted[name], name
    assert leftovers == []
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 2


@pytest.mark.parametrize("kill_on, call", [("numpy:save", 2), ("salt.files:_fsync", 3)])
def test_prepare_killed_while_storing_then_rerun_builds_the_same_cache(kill_on, call, synthetic_dir, tmp_path):
    def prepare(cache: Path, **kill) -> subprocess.CompletedProcess:
        return run(["-m", "salt.prepare", "data=synthetic", f"data.dir={synthetic_dir}", f"paths.cache_dir={cache}"], **kill)

    cache = tmp_path / "cache"
    killed = prepare(cache, kill_on=kill_on, call=call)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert faults.temporaries(cache), "the kill should have come in the middle of a store"
    damaged = faults.half_written(cache)
    rerun = prepare(cache)
    fresh = prepare(tmp_path / "fresh")
    leftovers = faults.temporaries(cache)
    same = _cache_arrays(cache) == _cache_arrays(tmp_path / "fresh")
    faults.record("kill -9 (prepare)", rerun.returncode == 0 and same and not leftovers, len(damaged))
    assert damaged == []
    assert rerun.returncode == 0 and fresh.returncode == 0, rerun.stderr[-3000:]
    assert leftovers == []
    assert same


def _cache_arrays(cache: Path) -> dict[str, bytes]:
    """{entry/array name: bytes} of every cached array."""
    return {str(path.relative_to(cache)): path.read_bytes() for path in sorted(cache.rglob("*.npy"))}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, synthetic_dir) -> Path:
    root = tmp_path_factory.mktemp("trained")
    result = run(train_args(root / "outputs", synthetic_dir, root / "cache", "trainer.max_epochs=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "outputs" / RUN


def _predict(run_dir: Path, out: Path, cache: Path, **kill) -> subprocess.CompletedProcess:
    return run(["predict.py", f"runs=[{run_dir}]", f"out={out}", f"paths.cache_dir={cache}", "pictures.largest=0"], **kill)


@pytest.fixture(scope="module")
def reference_submission(trained_run, tmp_path_factory) -> bytes:
    """The submission of an uninterrupted prediction."""
    root = tmp_path_factory.mktemp("reference_prediction")
    result = _predict(trained_run, root / "out", root / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    return (root / "out" / "submission.csv").read_bytes()


@pytest.mark.parametrize(
    "kill_on, call, after",
    [("salt.files:_fsync", 1, False), ("salt.prediction.pipeline:write_report", 1, False)],
    ids=["while storing the test cache", "after the submission, before the report"],
)
def test_predict_killed_then_rerun_writes_the_same_submission(kill_on, call, after, trained_run, reference_submission, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    killed = _predict(trained_run, out, cache, kill_on=kill_on, call=call, after=after)
    assert killed.returncode == -9, killed.stderr[-3000:]
    damaged = faults.half_written(tmp_path)
    rerun = _predict(trained_run, out, cache)
    same = rerun.returncode == 0 and (out / "submission.csv").read_bytes() == reference_submission
    leftovers = faults.temporaries(tmp_path)
    faults.record("kill -9 (predict)", same and not leftovers, len(damaged))
    assert damaged == []
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert same
    assert leftovers == []


# --- a full disk under each writer ------------------------------------------------------


def _write_checkpoint(path: Path) -> None:
    from salt.training.checkpoints import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"state_dict": {"net.w": torch.ones(3)}, "epoch": 1}, path)


def _write_metrics(path: Path) -> None:
    from salt.training.csv_logger import AtomicExperimentWriter

    writer = AtomicExperimentWriter(log_dir=str(path.parent), history=(["epoch", "step", "val/score"], [{"epoch": 0, "step": 1, "val/score": 0.5}]))
    writer.log_metrics({"val/score": 0.7, "epoch": 1}, step=2)
    writer.save()


def _write_submission(path: Path) -> None:
    from salt.submission import write_submission

    write_submission(path, ["a", "b"], np.zeros((2, 101, 101), dtype=bool))


def _write_report(path: Path) -> None:
    from salt.prediction.report import write_report

    report = json.loads((REPO / "benchmarks" / "results" / "cpu_resnet18_fold0" / "report.json").read_text())
    write_report(report, path.parent)


def _write_figure(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    salt.files.save_figure(fig, path)


def _write_folds(path: Path) -> None:
    from salt.folds import write_folds

    write_folds(pd.DataFrame({"id": ["a", "b"], "fold": [0, 1], "coverage": [0.0, 0.5], "mosaic_id": [-1, -1]}), path)


def _write_cache(path: Path) -> None:
    from salt.data.cache import ArrayCache

    ArrayCache(path.parent).store("tiles", {"kind": "test"}, {"images": np.ones((4, 5, 5), dtype=np.float32)})


WRITERS = {
    "checkpoint": (_write_checkpoint, "last.ckpt"),
    "metrics.csv": (_write_metrics, "metrics.csv"),
    "submission": (_write_submission, "submission.csv"),
    "report": (_write_report, "report.json"),
    "figure": (_write_figure, "training_curves.png"),
    "fold table": (_write_folds, "folds.csv"),
    "cache entry": (_write_cache, "tiles"),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_full_disk_leaves_the_previous_file_whole(writer, tmp_path, monkeypatch):
    write, name = WRITERS[writer]
    target = tmp_path / name
    write(target)  # a complete first version
    before = _snapshot(tmp_path)

    flush = salt.files._fsync

    def full_disk(path: Path) -> None:
        if Path(path).is_file():
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        flush(path)

    monkeypatch.setattr(salt.files, "_fsync", full_disk)
    with pytest.raises(Exception) as raised:
        write(target)
    monkeypatch.undo()
    disk_full = _is_disk_full(raised.value)
    damaged = faults.half_written(tmp_path)
    unchanged = _snapshot(tmp_path) == before
    faults.record("disk full", disk_full and unchanged, len(damaged))
    assert disk_full, raised.value
    assert damaged == []
    assert unchanged, "the previous version must stay as it was, with no temporaries beside it"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _is_disk_full(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC or "no space left" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False


def test_full_disk_during_training_is_one_line(synthetic_dir, tmp_path):
    # The disk fills before the first checkpoint: one line, and no checkpoint appears.
    script = (
        "import errno, sys, salt.files\n"
        "flush = salt.files._fsync\n"
        "def full(path):\n"
        "    if str(path).endswith('.ckpt'):\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device', str(path))\n"
        "    flush(path)\n"
        "salt.files._fsync = full\n"
        "sys.argv = sys.argv[1:]\n"
        "import runpy; runpy.run_path('train.py', run_name='__main__')\n"
    )
    result = run(["-c", script, *train_args(tmp_path / "outputs", synthetic_dir, tmp_path / "cache")])
    run_dir = tmp_path / "outputs" / RUN
    damaged = faults.half_written(tmp_path / "outputs")
    lines = result.stderr.strip().splitlines()
    expected = f"error: {run_dir / 'checkpoints' / 'best.ckpt'}: no space left on device"
    one_line = result.returncode == 1 and lines[-1].startswith(expected)
    faults.record("disk full", one_line and not faults.temporaries(run_dir), len(damaged))
    assert one_line, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert damaged == []
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()
    assert faults.temporaries(run_dir) == []


# --- damaged checkpoints and resumes that do not fit -----------------------------------


def test_truncated_last_checkpoint_is_set_aside_and_the_run_starts_over(synthetic_dir, tmp_path):
    args = train_args(tmp_path / "outputs", synthetic_dir, tmp_path / "cache", "trainer.max_epochs=1")
    run_dir = tmp_path / "outputs" / RUN
    assert run(args).returncode == 0
    first = read_metrics_csv(run_dir / "metrics" / "metrics.csv")
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # damaged outside the suite

    strict = run([*args, "resume=true"])
    assert strict.returncode == 1
    assert strict.stderr.strip().splitlines()[-1].startswith(f"error: resume=true: checkpoint {last}: cannot be read, truncated or not a checkpoint")
    aside = last.with_name("last.ckpt.unreadable")
    assert aside.is_file() and not last.exists()

    shutil.copy(aside, last)
    rerun = run(args)
    series = read_metrics_csv(run_dir / "metrics" / "metrics.csv")
    recovered = rerun.returncode == 0 and all(series[name] == first[name] for name in COMPARED)
    faults.record("damaged checkpoint", recovered, len(faults.half_written(run_dir)))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "set aside as last.ckpt.unreadable-1, starting the run over" in rerun.stdout + rerun.stderr
    assert recovered  # started over from epoch 0: the same epoch as the first time


def test_resume_with_a_config_that_does_not_fit_changes_nothing(synthetic_dir, tmp_path):
    args = train_args(tmp_path / "outputs", synthetic_dir, tmp_path / "cache", "trainer.max_epochs=1")
    run_dir = tmp_path / "outputs" / RUN
    assert run(args).returncode == 0
    before = {name: path.read_bytes() for name, path in _run_record(run_dir).items()}
    wider = run([*args, "model.decoder_channels=[32,16,16,8,8]", "trainer.max_epochs=2"])
    assert wider.returncode == 1
    assert wider.stderr.strip().splitlines()[-1].startswith(
        f"error: resume from {run_dir / 'checkpoints' / 'last.ckpt'}: the checkpoint does not fit this config ("
    )
    assert "nothing was changed" in wider.stderr
    after = {name: path.read_bytes() for name, path in _run_record(run_dir).items()}
    faults.record("resume that does not fit", after == before, len(faults.half_written(run_dir)))
    assert after == before


def _run_record(run_dir: Path) -> dict[str, Path]:
    return {
        "config": run_dir / "config.yaml",
        "last": run_dir / "checkpoints" / "last.ckpt",
        "best": run_dir / "checkpoints" / "best.ckpt",
        "metrics": run_dir / "metrics" / "metrics.csv",
    }


def test_truncated_init_checkpoint_is_one_line(trained_run, synthetic_dir, tmp_path):
    truncated = tmp_path / "stage1.ckpt"
    data = (trained_run / "checkpoints" / "best.ckpt").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    result = run(train_args(tmp_path / "outputs", synthetic_dir, tmp_path / "cache", f"init_checkpoint={truncated}"))
    faults.record("damaged checkpoint", result.returncode == 1, 0)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: checkpoint {truncated}: cannot be read, truncated or not a checkpoint")
    assert "Traceback" not in result.stderr
