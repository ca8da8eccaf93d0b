import re

from salt.data.tiles import load_split
from salt.submission import validate_submission

from conftest import run_module


def test_demo_runs_end_to_end_on_synthetic_tiles(tmp_path):
    out = tmp_path / "demo"
    result = run_module("salt.demo", f"out={out}")
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"score: \d\.\d{4}", last)
    train = load_split(out / "data", "train")
    # The baseline predicts every tile empty: it scores the share of empty tiles.
    assert float(last.split()[1]) == round(float((train.coverage == 0).mean()), 4)
    test = load_split(out / "data", "test")
    validate_submission(out / "submission.csv", test.ids)
