"""What one training run dir says about the run: its overrides, best score and time taken.

A run dir (outputs/<name>/<encoder>/[<variant>/]fold_<k>) holds `.hydra/overrides.yaml` (the
overrides Hydra composed it with), `metrics/metrics.csv` (Lightning's CSV log) and the job's log
`<job name>.log`; `salt.sweep.collect` tabulates many of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from salt import rundir
from salt.errors import SaltError

SCORE = "val/score"
# Bookkeeping overrides that every multirun job carries; not a setting of the run.
HIDDEN_OVERRIDES = ("variant_from",)
# The first timestamp of a Hydra job log line: [2026-11-24 15:16:40,745][logger][LEVEL] - ...
_LOG_TIME = re.compile(r"^\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3})\]")


@dataclass
class RunSummary:
    """One run: where it is, how it was configured and how it scored."""

    run_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)  # key -> value as typed, e.g. "loss.weights.lovasz" -> "0.5"
    best_score: float | None = None  # highest val/score of any epoch
    best_epoch: int | None = None  # the first epoch that reached it
    epochs: int = 0  # epochs validated so far
    wall_time_s: float | None = None  # first log line to last metrics write, pauses included
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, val/score)


def find_run_dirs(root: Path) -> list[Path]:
    """Every run dir under `root` (or `root` itself), sorted; a run dir has metrics/metrics.csv."""
    root = Path(root)
    if not root.is_dir():
        raise SaltError(f"{root}: not a directory")
    found = [path.parent.parent for path in root.rglob(rundir.METRICS.as_posix())]
    return sorted(run for run in found if not any(part.startswith(".") for part in run.relative_to(root).parts))


def read_overrides(run_dir: Path) -> dict[str, str]:
    """The run's overrides from .hydra/overrides.yaml, prefixes (+, ++, ~) dropped; {} without."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    try:
        lines = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError as error:
        raise SaltError(f"{path}: not YAML ({error})") from None
    overrides = {}
    for line in lines:
        key, _, value = str(line).partition("=")
        key = key.lstrip("+~")
        if key not in HIDDEN_OVERRIDES:
            overrides[key] = value
    return overrides


def score_curve(metrics_csv: Path) -> list[tuple[int, float]]:
    """(epoch, val/score) for every validated epoch, in order; NaN scores left out."""
    try:
        series = rundir.read_metrics_csv(metrics_csv)
    except (OSError, ValueError) as error:
        raise SaltError(f"{metrics_csv}: unreadable ({error})") from None
    return [(epoch, value) for epoch, value in series.get(SCORE, []) if not math.isnan(value)]


def log_start(run_dir: Path) -> float | None:
    """POSIX time of the first line of the run's Hydra job log(s), or None without one."""
    starts = []
    for path in run_dir.glob("*.log"):
        with path.open(errors="replace") as handle:
            match = _LOG_TIME.match(handle.readline())
        if match:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            starts.append(stamp.timestamp() + int(match.group(2)) / 1000)
    return min(starts) if starts else None


def wall_time(run_dir: Path) -> float | None:
    """Seconds from the run's first log line to its last write of metrics or checkpoints.

    A resumed run's log and metrics continue the interrupted ones, so the span includes the
    pause; the first config write stands in for a missing log.
    """
    start = log_start(run_dir)
    if start is None and (run_dir / ".hydra" / "config.yaml").is_file():
        start = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
    ends = [path.stat().st_mtime for path in [run_dir / rundir.METRICS, *run_dir.glob(f"{rundir.CHECKPOINTS}/*.ckpt")] if path.is_file()]
    if start is None or not ends:
        return None
    return max(0.0, max(ends) - start)


def summarise(run_dir: Path) -> RunSummary:
    """Read one run dir into a RunSummary."""
    run_dir = Path(run_dir)
    curve = score_curve(run_dir / rundir.METRICS)
    summary = RunSummary(run_dir=run_dir, overrides=read_overrides(run_dir), curve=curve, wall_time_s=wall_time(run_dir))
    if curve:
        best_epoch, best = max(curve, key=lambda point: (point[1], -point[0]))
        summary.best_score, summary.best_epoch = best, best_epoch
        summary.epochs = len({epoch for epoch, _ in curve})
    return summary
