"""The prediction report, as JSON (everything) and markdown (what a person reads first)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from salt import rundir
from salt.files import atomic_file
from salt.prediction.inference import InferenceSettings
from salt.prediction.runs import Run
from salt.prediction.splits import SplitMasks, Thresholds, empty_baseline, split_score
from salt.prediction.thresholds import ThresholdSearch


def build_report(
    *,
    runs: list[Run],
    checkpoint: str,
    data_dir: Path,
    settings: InferenceSettings,
    train_ids: np.ndarray,
    truth: np.ndarray,
    thresholds: Thresholds,
    search: ThresholdSearch | None,
    oof: SplitMasks | None,
    test: SplitMasks | None,
    postprocess: dict,
    outputs: dict[str, Path | None],
    timings: dict[str, float],
) -> dict:
    """The report (report.json / report.md), built once from the finished records."""
    report: dict = {
        "runs": [describe_run(run) for run in runs],
        "checkpoint": checkpoint,
        "data_dir": str(data_dir),
        "inference": {
            "crop": settings.crop,
            "hflip": settings.hflip,
            "precision": settings.resolved_precision,
            "channels_last": settings.channels_last,
            "batch_size": settings.batch_size,
            "device": str(settings.torch_device),
        },
        "thresholds": thresholds.as_dict(),
    }
    if oof is not None:
        after = split_score(oof, truth, "after")
        report["oof"] = {
            "tiles": int(oof.covered.sum()),
            "train_tiles": len(train_ids),
            "report": split_score(oof, truth, "before"),
            "empty_baseline": empty_baseline(oof, truth),
            "search": search.as_dict(),
            "report_after_postprocess": after,
            "score": after["score"],
        }
    if test is not None:
        report["test"] = {
            "tiles": len(test.ids),
            "emptied_by_head": test.emptied_by_head,
            "emptied_all_salt": test.emptied_all_salt,
            "salt_tiles": int(test.after.reshape(len(test.after), -1).any(axis=1).sum()),
        }
    report["postprocess"] = postprocess
    report["outputs"] = {name: str(path) for name, path in outputs.items() if path is not None}
    report["timings"] = timings
    # Through JSON once: numpy scalars become numbers, integer keys strings, as in the file.
    return json.loads(json.dumps(report, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def describe_run(run: Run) -> dict:
    """A run as the report lists it: where it is, what it is, its best val/score."""
    best = None
    metrics = run.dir / rundir.METRICS
    if metrics.is_file():
        series = rundir.read_metrics_csv(metrics).get("val/score_best")
        best = series[-1][1] if series else None
    return {
        "name": run.name,
        "dir": str(run.dir),
        "checkpoint": str(run.checkpoint),
        "encoder": run.encoder,
        "model": str(run.config.model._target_),
        "folds": {"kind": run.folds.kind, "k": run.folds.k, "seed": run.folds.seed},
        "fold": run.fold,
        "crop_size": run.padding.crop_size,
        "padded_size": run.padding.size,
        "channels": run.channels,
        "val_score_best": best,
    }


def write_report(report: dict, out_dir: Path, stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` under `out_dir`, atomically."""
    json_path, markdown_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=_plain) + "\n")
    with atomic_file(markdown_path) as tmp:
        tmp.write_text(markdown(report))
    return json_path, markdown_path


def markdown(report: dict) -> str:
    """The report as a markdown page."""
    lines = ["# Prediction report", ""]
    inference = report["inference"]
    lines += [
        f"- Runs: {len(report['runs'])} (checkpoint `{report['checkpoint']}`), data `{report['data_dir']}`",
        f"- Inference: crop `{inference['crop']}`, horizontal-flip TTA {'on' if inference['hflip'] else 'off'}, precision {inference['precision']}",
        f"- Thresholds: mask {report['thresholds']['mask']}, empty {report['thresholds']['empty']} ({report['thresholds']['source']})",
        "",
        "| run | encoder | folds | fold | val/score_best |",
        "|---|---|---|---:|---:|",
    ]
    for run in report["runs"]:
        best = run.get("val_score_best")
        lines.append(
            f"| `{run['name']}` | {run['encoder']} | {run['folds']['kind']} k={run['folds']['k']} | {run['fold']} | "
            f"{'-' if best is None else f'{best:.4f}'} |"
        )
    oof = report.get("oof")
    if oof:
        lines += ["", "## Out-of-fold", ""]
        lines += [
            f"{oof['tiles']} of {oof['train_tiles']} train tiles have an out-of-fold prediction "
            f"(each predicted by the models whose validation fold held it).",
            "",
            f"- Score: **{oof['score']:.4f}** after post-processing, {oof['report']['score']:.4f} before; "
            f"every tile empty would score {oof['empty_baseline']:.4f}",
        ]
        if "search" in oof:
            best = oof["search"]["best"]
            used = report["thresholds"]
            lines.append(
                f"- Threshold search (before post-processing): best mask {best['mask']}, empty {best['empty']} → "
                f"{best['score']:.4f}; the thresholds used (mask {used['mask']}, empty {used['empty']}) → {oof['report']['score']:.4f}"
            )
        lines += ["", "| subset | tiles | before post-processing | after |", "|---|---:|---:|---:|"]
        before, after = oof["report"], oof.get("report_after_postprocess", oof["report"])
        rows = [("all", "", ""), ("empty", "empty", None), ("salt", "salt", None)]
        rows += [(f"coverage {10 * (c - 1)}–{10 * c}%", "coverage", str(c)) for c in range(1, 11)]
        for label, key, sub in rows:
            b = before if not key else before[key] if sub is None else before[key][sub]
            a = after if not key else after[key] if sub is None else after[key][sub]
            lines.append(f"| {label} | {b['tiles']} | {_score(b)} | {_score(a)} |")
    post = report.get("postprocess")
    if post and post.get("rules"):
        lines += ["", "## Post-processing", ""]
        lines.append(
            f"Measured on out-of-fold predictions ({post['measure']}); kept: `{post['keep']}`."
            if post.get("measured")
            else "Not measured (no out-of-fold predictions): every enabled rule applied."
        )
        lines += ["", "| rule | gain alone | gain in sequence | held-out tiles changed | kept | test tiles changed |", "|---|---:|---:|---:|---|---:|"]
        for rule in post["rules"]:
            lines.append(
                f"| {rule['name']} | {_gain(rule.get('alone_gain'))} | {_gain(rule.get('sequence_gain'))} | "
                f"{rule.get('tiles_changed', '-')} | {'yes' if rule.get('kept', True) else 'no'} | {rule.get('test_tiles_changed', '-')} |"
            )
    test = report.get("test")
    if test:
        lines += [
            "",
            "## Test",
            "",
            f"- {test['tiles']} tiles, {test['salt_tiles']} with salt after post-processing",
            f"- emptied by the empty-tile threshold: {test['emptied_by_head']}; all-salt predictions emptied: {test['emptied_all_salt']}",
        ]
    outputs = report.get("outputs", {})
    if outputs:
        lines += ["", "## Files", ""] + [f"- {name}: `{path}`" for name, path in outputs.items() if path]
    timings = report.get("timings", {})
    if timings:
        lines += ["", "## Time", ""] + [f"- {name}: {seconds:.1f} s" for name, seconds in timings.items()]
    return "\n".join(lines) + "\n"


def _score(part: dict) -> str:
    return "-" if not part["tiles"] or math.isnan(part["score"]) else f"{part['score']:.4f}"


def _gain(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _plain(value):
    """JSON for numpy scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
