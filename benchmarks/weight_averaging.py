"""Averaged (EMA) weights against the raw weights of the same run, on its validation tiles.

A run trained with weight averaging (`callbacks.ema`, Lightning's `EMAWeightAveraging`)
saves the averaged weights as each checkpoint's ``state_dict`` (what validation scored and
prediction loads) and the raw weights beside them (``current_model_state``). This scores
both with validation's rule (no TTA, no post-processing, thresholds 0.5 / 0.5) on exactly the
run's validation tiles, for its best and last checkpoints: the gain of averaging, measured
on one training trajectory.

    .venv/bin/python benchmarks/weight_averaging.py outputs/cpu/resnet18/ema/fold_0

Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from salt import rundir
from salt.prediction.pipeline import predict_runs
from salt.training.checkpoints import read_checkpoint

VALIDATION_RULE = ("test=false", "tta.hflip=false", "postprocess=none", "thresholds.mask=0.5", "thresholds.empty=0.5", "pictures.largest=0")


def score(run: Path, out: Path, precision: str) -> float:
    result = predict_runs([run], *VALIDATION_RULE, f"precision={precision}", f"out={out}", log=lambda line: None)
    return float(result.oof_score_before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory trained with callbacks.ema")
    parser.add_argument("--precision", default="32", choices=["32", "bf16", "auto"])
    args = parser.parse_args()
    print("| checkpoint | epoch | averaged weights | raw weights | averaged − raw |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("best", "last"):
            checkpoint = read_checkpoint(rundir.checkpoint_path(args.run, name))
            if "current_model_state" not in checkpoint:
                raise SystemExit(f"error: {rundir.checkpoint_path(args.run, name)}: no current_model_state; the run was not trained with weight averaging")
            scores = {}
            for kind, state in (("averaged", checkpoint["state_dict"]), ("raw", checkpoint["current_model_state"])):
                # A copy of the run whose best.ckpt holds these weights (config and validation ids as recorded).
                copy = Path(tmp) / f"{name}_{kind}" / "run" / "fold_0"
                (copy / rundir.CHECKPOINTS).mkdir(parents=True)
                for record in (rundir.CONFIG, rundir.VALIDATION_IDS):
                    shutil.copy(args.run / record, copy / record)
                torch.save({"state_dict": state, **{k: v for k, v in checkpoint.items() if k not in ("state_dict", "current_model_state", "averaging_state")}}, rundir.checkpoint_path(copy, "best"))
                scores[kind] = score(copy, Path(tmp) / f"predict_{name}_{kind}", args.precision)
            print(f"| {name} | {checkpoint.get('epoch')} | {scores['averaged']:.4f} | {scores['raw']:.4f} | {scores['averaged'] - scores['raw']:+.4f} |", flush=True)


if __name__ == "__main__":
    main()
