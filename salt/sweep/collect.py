"""Collect a sweep's runs into one table: overrides -> best val/score, its epoch, wall time.

    python -m salt.sweep.collect DIR [DIR ...] [--out PREFIX]

Finds every run dir under the DIRs (e.g. outputs/loss_weights, or outputs for everything) and
writes PREFIX.md (a markdown table, best run first, with a column for each override that differs
between the runs and the shared ones above it), PREFIX.csv (every override in a column, numbers
unrounded) and PREFIX.png (val/score against epoch per run, and the best scores ranked). PREFIX
defaults to DIR/sweep_results for the first DIR. Prints the markdown; the last line names the files.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from salt.errors import SaltError, exit_on_error
from salt.files import atomic_file, save_figure
from salt.sweep.runs import RunSummary, find_run_dirs, summarise


def collect(roots: Sequence[Path]) -> list[RunSummary]:
    """Every run under `roots`, best val/score first (runs not yet validated last)."""
    run_dirs = sorted({run for root in roots for run in find_run_dirs(Path(root))})
    if not run_dirs:
        raise SaltError(f"no runs under {', '.join(map(str, roots))} (a run dir holds metrics/metrics.csv)")
    runs = [summarise(run) for run in run_dirs]
    return sorted(runs, key=lambda run: (run.best_score is None, -(run.best_score or 0.0), str(run.run_dir)))


def split_overrides(runs: Sequence[RunSummary]) -> tuple[list[str], dict[str, str]]:
    """(keys whose value differs between runs, in first-seen order; {key: value} shared by all)."""
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run.overrides if key not in keys]
    varying = [key for key in keys if len({run.overrides.get(key) for run in runs}) > 1]
    shared = {key: runs[0].overrides[key] for key in keys if key not in varying}
    return varying, shared


def relative(run: RunSummary, base: Path) -> str:
    """The run dir below `base`, as the table shows it."""
    try:
        return run.run_dir.relative_to(base).as_posix() or "."
    except ValueError:
        return run.run_dir.as_posix()


def label(run: RunSummary, keys: Sequence[str], base: Path) -> str:
    """A short name for a run in a legend: its values of the varying keys, else its dir."""
    return " ".join(f"{key}={run.overrides[key]}" for key in keys if key in run.overrides) or relative(run, base)


def format_duration(seconds: float | None) -> str:
    """12s, 7m, 5h 03m."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m" if minutes else f"{seconds:.0f}s"


def _cell(value: object) -> str:
    """A markdown table cell: a | in a value would end the cell."""
    return str(value).replace("|", "\\|")


def markdown_table(runs: Sequence[RunSummary], base: Path) -> str:
    """The sweep as markdown: shared overrides, then one row per run, best first."""
    varying, shared = split_overrides(runs)
    header = [*varying, "best val/score", "epoch", "epochs", "wall time", "run"]
    rows = [
        [
            *(run.overrides.get(key, "") for key in varying),
            "-" if run.best_score is None else f"{run.best_score:.4f}",
            "-" if run.best_epoch is None else str(run.best_epoch),
            str(run.epochs),
            format_duration(run.wall_time_s),
            relative(run, base),
        ]
        for run in runs
    ]
    lines = [
        f"# Sweep results: {base}",
        "",
        f"{len(runs)} runs" + (f"; shared overrides: {' '.join(f'{k}={v}' for k, v in shared.items())}" if shared else ""),
        "",
        "| " + " | ".join(map(_cell, header)) + " |",
        "|" + "|".join("---:" if name in ("best val/score", "epoch", "epochs") else "---" for name in header) + "|",
    ]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(runs: Sequence[RunSummary], base: Path) -> str:
    """The sweep as CSV: run, every override key, best_score, best_epoch, epochs, wall_time_s."""
    varying, shared = split_overrides(runs)
    keys = [*varying, *shared]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", *keys, "best_score", "best_epoch", "epochs", "wall_time_s"])
    for run in runs:
        writer.writerow(
            [
                relative(run, base),
                *(run.overrides.get(key, "") for key in keys),
                "" if run.best_score is None else repr(run.best_score),
                "" if run.best_epoch is None else run.best_epoch,
                run.epochs,
                "" if run.wall_time_s is None else f"{run.wall_time_s:.1f}",
            ]
        )
    return out.getvalue()


def plot(runs: Sequence[RunSummary], out: Path, base: Path, title: str = "") -> Path:
    """val/score against epoch for every run, and the runs ranked by best val/score; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    varying, _ = split_overrides(runs)
    names = [label(run, varying, base) for run in runs]
    scored = [(name, run) for name, run in zip(names, runs) if run.best_score is not None]
    fig, (curves, bests) = plt.subplots(1, 2, figsize=(13, max(3.6, 0.32 * len(scored) + 1.5)), gridspec_kw={"width_ratios": [3, 2]})
    colors = []
    for name, run in scored:
        epochs, scores = zip(*run.curve)
        [line] = curves.plot(epochs, scores, label=name, marker="." if len(epochs) < 30 else None, linewidth=1.2)
        colors.append(line.get_color())  # the same colour for the run's dot in the ranking
    curves.set_xlabel("epoch")
    curves.set_ylabel("val/score")
    curves.grid(alpha=0.3)
    if 0 < len(scored) <= 12:  # beyond a dozen runs the ranking carries the names
        curves.legend(fontsize=7)
    ranked = scored[::-1]  # best at the top
    positions = list(range(len(ranked)))
    best = [run.best_score for _, run in ranked]
    # Dots on a zoomed axis: the scores of a sweep differ in the second or third decimal.
    bests.scatter(best, positions, c=colors[::-1], zorder=3)
    bests.set_yticks(positions, [name for name, _ in ranked], fontsize=7)
    for y, (_, run) in zip(positions, ranked):
        bests.annotate(f"{run.best_score:.4f} (epoch {run.best_epoch})", (run.best_score, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7)
    if best:
        span = max(max(best) - min(best), 0.01)
        bests.set_xlim(min(best) - 0.15 * span, max(best) + 0.8 * span)  # room for the labels
        bests.set_ylim(-0.7, len(best) - 0.3)
    bests.set_xlabel("best val/score")
    bests.grid(axis="x", alpha=0.3)
    return save_figure(fig, out, title)


def write_results(runs: Sequence[RunSummary], base: Path, prefix: Path) -> tuple[str, list[Path]]:
    """Write PREFIX.md, PREFIX.csv and PREFIX.png; returns (the markdown, the paths)."""
    markdown = markdown_table(runs, base)
    paths = [prefix.with_name(prefix.name + suffix) for suffix in (".md", ".csv", ".png")]
    with atomic_file(paths[0]) as tmp:
        tmp.write_text(markdown)
    with atomic_file(paths[1]) as tmp:
        tmp.write_text(csv_text(runs, base))
    plot(runs, paths[2], base, title=f"{base} ({len(runs)} runs)")
    return markdown, paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salt.sweep.collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="dirs holding the sweep's run dirs (e.g. outputs/loss_weights)")
    parser.add_argument("--out", type=Path, default=None, help="prefix of the .md, .csv and .png files (default DIR/sweep_results)")
    args = parser.parse_args(argv)
    with exit_on_error():
        runs = collect(args.dirs)
        base = args.dirs[0] if len(args.dirs) == 1 else Path(".")
        markdown, paths = write_results(runs, base, args.out or args.dirs[0] / "sweep_results")
        print(markdown)
        print("wrote " + ", ".join(map(str, paths)))


if __name__ == "__main__":
    sys.exit(main())
