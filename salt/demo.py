"""The main job on synthetic tiles: build a dataset, score a baseline, write a submission.

    python -m salt.demo [out=outputs/demo seed=0]

Runs end to end with no data, no GPU and no network, so a fresh install can be checked
in a minute. Steps: generate a synthetic dataset in the competition layout; load it;
predict every tile empty (the competition's reference baseline) and score that on the
labelled tiles with the competition metric; write and validate a test submission.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from salt import synthetic
from salt.data.tiles import load_split
from salt.errors import exit_on_error
from salt.score import format_report, score_files
from salt.submission import write_submission


def run_demo(cfg: DictConfig) -> float:
    """Run every step, printing each with its time; returns the baseline score."""
    out = Path(cfg.out)
    data_dir = out / "data"
    step_start = time.perf_counter()

    def done(message: str) -> None:
        nonlocal step_start
        print(f"[{time.perf_counter() - step_start:6.1f} s] {message}", flush=True)
        step_start = time.perf_counter()

    gen = cfg.synthetic
    tiles = synthetic.generate_tiles(cfg.seed, gen.sections, gen.section_cols, gen.section_rows)
    synthetic.write_dataset(data_dir, tiles, cfg.seed, gen.train_fraction, overwrite=True)
    done(f"synthetic dataset: {len(tiles)} tiles from {gen.sections} sections in {data_dir}")

    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    done(f"loaded {len(train)} train tiles ({int((train.coverage > 0).sum())} with salt) and {len(test)} test tiles")

    baseline = out / "baseline_train.csv"
    write_submission(baseline, train.ids, np.zeros_like(train.masks))
    submission = write_submission(out / "submission.csv", test.ids, np.zeros_like(test.images, dtype=bool))
    done(f"baseline (every tile empty): {baseline} and a validated test submission {submission}")

    report = score_files(str(data_dir / "train.csv"), str(baseline))
    print(format_report(report))
    return report["score"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="demo")
def main(cfg: DictConfig) -> float:
    with exit_on_error():
        return run_demo(cfg)


if __name__ == "__main__":
    main()
