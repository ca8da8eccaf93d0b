import json
import re
import sys

import pandas as pd
import pytest

from salt.rundir import read_metrics_csv

from conftest import run_module


@pytest.mark.slow
def test_demo_learns_and_ends_with_a_submission(tmp_path):
    """The README's main job, shortened to 12 epochs: a real training on synthetic tiles
    lowers the validation loss well below its first epoch's and beats the every-tile-empty
    baseline,
    then predict.py writes a valid submission and an out-of-fold report."""
    out = tmp_path / "demo"
    result = run_module("salt.demo", f"out={out}", "epochs=12")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"score: \d\.\d{4}", lines[-1])
    assert "$ " in result.stdout and "train.py experiment=demo" in result.stdout  # each step shows its command
    assert "$ " + sys.executable + " predict.py" in result.stdout

    run = out / "runs" / "demo" / "tiny" / "fold_0"
    metrics = read_metrics_csv(run / "metrics" / "metrics.csv")
    scores = [value for _, value in metrics["val/score"]]
    assert len(scores) == 12 and float(lines[-1].split()[1]) == pytest.approx(max(scores), abs=1e-4)
    baseline = float(next(line for line in lines if "every tile empty (baseline)" in line).split()[-1])
    assert max(scores) > baseline + 0.05
    val_bce = [value for _, value in metrics["val/bce"]]
    assert min(val_bce[-3:]) < 0.7 * val_bce[0]

    report = json.loads((out / "predict" / "report.json").read_text())
    assert report["oof"]["tiles"] > 0 and report["oof"]["score"] > baseline
    assert (out / "predict" / "report.md").is_file()
    submission = pd.read_csv(out / "predict" / "submission.csv", keep_default_na=False)
    test_ids = pd.read_csv(out / "data" / "sample_submission.csv").id
    assert sorted(submission.id) == sorted(test_ids)
