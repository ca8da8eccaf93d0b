import re

import pytest

from salt.training.callbacks import read_metrics_csv

from conftest import run_module


@pytest.mark.slow
def test_demo_runs_end_to_end_on_synthetic_tiles(tmp_path):
    out = tmp_path / "demo"
    result = run_module("salt.demo", f"out={out}", "epochs=2", "synthetic.sections=3", "synthetic.section_cols=6", "synthetic.section_rows=4")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"score: \d\.\d{4}", lines[-1])
    assert any("every tile empty (baseline)" in line for line in lines)
    assert "$ " in result.stdout and "train.py experiment=demo" in result.stdout  # each step shows its command
    run = out / "runs" / "demo" / "tiny" / "fold_0"
    scores = [value for _, value in read_metrics_csv(run / "metrics" / "metrics.csv")["val/score"]]
    assert len(scores) == 2 and float(lines[-1].split()[1]) == pytest.approx(max(scores), abs=1e-4)
