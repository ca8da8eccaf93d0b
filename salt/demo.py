"""The main job on synthetic tiles: data, training, scores, submission, on a CPU in minutes.

    python -m salt.demo [out=outputs/demo seed=0 epochs=...]

Runs end to end with no data, no GPU and no network. Steps, each printed with the
command a user would type for it:

1. generate a synthetic dataset in the competition layout (`python -m salt.synthetic`);
2. build the padded tiles and folds (`python -m salt.prepare`);
3. train a small network on fold 0 (`python train.py experiment=demo`);
4. predict with flip TTA, score the out-of-fold tiles, measure the mosaic post-processing
   and write a submission (`python predict.py`);
5. compare the validation score with the every-tile-empty baseline on the same fold.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from salt import synthetic
from salt import rundir
from salt.errors import SaltError, exit_on_error
from salt.rundir import read_metrics_csv

REPO = Path(__file__).resolve().parents[1]


def run_step(title: str, command: list[str]) -> None:
    """Run one of the suite's commands as a user would, streaming its output."""
    print(f"\n== {title}\n$ {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO)
    if result.returncode:
        raise SaltError(f"step '{title}' failed (exit status {result.returncode}): {shlex.join(command)}")
    print(f"== {title}: {time.perf_counter() - start:.1f} s", flush=True)


def run_demo(cfg: DictConfig) -> dict[str, float]:
    """Run every step; returns the validation scores of the model and of the baseline."""
    out = Path(cfg.out).resolve()
    data_dir, cache_dir, runs_dir = out / "data", out / "cache", out / "runs"
    gen = cfg.synthetic
    python = sys.executable

    start = time.perf_counter()
    tiles = synthetic.generate_tiles(cfg.seed, gen.sections, gen.section_cols, gen.section_rows)
    synthetic.write_dataset(data_dir, tiles, cfg.seed, gen.train_fraction, overwrite=True)
    print(
        f"== synthetic dataset: {len(tiles)} tiles from {gen.sections} sections in {data_dir} "
        f"({time.perf_counter() - start:.1f} s; the same as python -m salt.synthetic out={data_dir} seed={cfg.seed} ...)"
    )
    common = [f"data.dir={data_dir}", f"paths.cache_dir={cache_dir}"]
    run_step("pad tiles and make folds", [python, "-m", "salt.prepare", *common])
    run_step(
        "train a small network on fold 0",
        [
            python,
            "train.py",
            "experiment=demo",
            *common,
            f"paths.output_dir={runs_dir}",
            f"seed={cfg.seed}",
            f"trainer.max_epochs={cfg.epochs}",
            "callbacks.progress_bar.refresh_rate=0",
        ],
    )
    run = runs_dir / "demo" / "tiny" / "fold_0"
    best = max(value for _, value in read_metrics_csv(run / rundir.METRICS)["val/score"])
    predictions = out / "predict"
    run_step(
        "predict: flip TTA, out-of-fold report, post-processing, submission",
        [python, "predict.py", f"runs=[{run}]", f"out={predictions}", f"paths.cache_dir={cache_dir}"],
    )
    oof = json.loads((predictions / "report.json").read_text())["oof"]

    # The report scores fold 0 (the only out-of-fold tiles) and the every-tile-empty baseline on it.
    baseline = float(oof["empty_baseline"])
    print(f"\nvalidation fold 0: {oof['tiles']} tiles")
    print(f"  every tile empty (baseline): {baseline:.4f}")
    print(f"  trained network (best epoch): {best:.4f}   curves: {run / 'training_curves.png'}")
    print(f"  out-of-fold, flip TTA and post-processing: {oof['score']:.4f}   report: {predictions / 'report.md'}")
    print(f"submission: {predictions / 'submission.csv'}")
    print(f"score: {best:.4f}")
    return {"score": best, "baseline": baseline, "oof": float(oof["score"])}


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> float:
    with exit_on_error():
        return run_demo(cfg)["score"]


if __name__ == "__main__":
    main()
