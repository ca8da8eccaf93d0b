"""Shared fixtures: synthetic datasets built in tmp dirs, and the real data when it is present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from salt import synthetic

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path | None:
    """The competition data: $SALT_DATA_DIR, else ../shared/tgs-salt beside the checkout."""
    candidate = Path(os.environ.get("SALT_DATA_DIR", REPO.parent / "shared" / "tgs-salt"))
    return candidate if (candidate / "train.csv").is_file() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = real_data_dir()
    if path is None:
        pytest.skip("the competition data is absent (set SALT_DATA_DIR or put it at ../shared/tgs-salt)")
    return path


@pytest.fixture(scope="session")
def synthetic_tiles() -> list[synthetic.Tile]:
    """A small synthetic dataset's tiles: 2 sections of 6 x 4 tiles."""
    return synthetic.generate_tiles(seed=7, sections=2, section_cols=6, section_rows=4)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory, synthetic_tiles) -> Path:
    """The small synthetic dataset written in the competition layout; read-only for tests."""
    out = tmp_path_factory.mktemp("synthetic") / "data"
    return synthetic.write_dataset(out, synthetic_tiles, seed=7, train_fraction=0.5)


@pytest.fixture
def synthetic_copy(tmp_path, synthetic_tiles) -> Path:
    """A fresh copy of the small synthetic dataset that a test may damage."""
    return synthetic.write_dataset(tmp_path / "data", synthetic_tiles, seed=7, train_fraction=0.5)


def run_module(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m module args...` as a user would; returns the finished process."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


# Overrides that make any training config run fast on a CPU, with no network and no W&B.
FAST_TRAINING = [
    "encoder=tiny",
    "model.decoder_channels=[16,16,16,8,8]",
    "model.hypercolumn_channels=8",
    "trainer=cpu",
    "logger=csv",
    "data.num_workers=0",
    "data.batch_size=8",
]


@pytest.fixture
def compose_train(tmp_path, synthetic_dir):
    """Compose conf/train.yaml as `python train.py` would, on the small synthetic dataset.

    Returns compose(*overrides, fast=True, run_dir=None) -> DictConfig, with Hydra's runtime
    set so `train(cfg)` writes to `run_dir` (default tmp_path/run); `fast` adds
    FAST_TRAINING (a tiny network on CPU).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import salt.training.run  # noqa: F401  registers the schemas train.yaml composes, as train.py does

    def _compose(*overrides: str, fast: bool = True, run_dir: Path | None = None):
        base = [
            "data=synthetic",
            f"data.dir={synthetic_dir}",
            f"paths.output_dir={tmp_path / 'outputs'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            *(FAST_TRAINING if fast else []),
        ]
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=[*base, *overrides], return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir or tmp_path / "run")
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    HydraConfig.instance().cfg = None


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault-injection suite's summary line (tests/test_faults.py), when it ran."""
    import faults

    line = faults.summary()
    if line:
        terminalreporter.write_sep("-", line)
