"""The package installed from a wheel (not editable) runs its commands from any directory:
the Hydra configs travel inside it."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_commands_of_the_installed_wheel_find_their_configs(tmp_path):
    wheels, site, work, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "work", tmp_path / "source"
    work.mkdir()
    # Built from a copy: a build writes build/ and *.egg-info beside the sources.
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "outputs", "benchmarks", "tests", "__pycache__")
    shutil.copytree(REPO, source, symlinks=True, ignore=skip)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("salt-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    where = run("-c", "import salt; print(salt.__file__); print(sorted(p.name for p in salt.CONF_DIR.iterdir()))")
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(site)) and "train.yaml" in where.stdout  # not the checkout's copy
    # A command through @hydra.main, one through compose, and one through the prediction config.
    made = run("-m", "salt.synthetic", "out=data", "sections=1", "section_cols=4", "section_rows=3")
    assert made.returncode == 0, made.stderr
    assert (work / "data" / "train.csv").is_file()
    summary = run("-m", "salt.models.summary", "encoder=tiny")
    assert summary.returncode == 0, summary.stderr
    composed = run("-c", "from salt.prediction import predict_config; print(predict_config('runs=[x]').thresholds.mask)")
    assert composed.returncode == 0 and composed.stdout.strip() == "0.4", composed.stderr
