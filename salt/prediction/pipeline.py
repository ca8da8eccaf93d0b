"""`predict(cfg)`: trained runs → test submission, out-of-fold report, mosaic pictures.

Steps, each logged with its time:

1. find the runs (`runs.find_runs`) and the data directory they share;
2. for each run in turn: rebuild its network from config.yaml, load the checkpoint, and
   stream predictions into running means (`ensemble.ensemble_means`): every test tile,
   and the train tiles of the run's validation fold (out-of-fold);
3. search the two thresholds on the out-of-fold means (`splits.choose_thresholds`), then
   binarise each split by the one rule (`splits.binarise`, `salt.masks.tile_masks`): one
   `SplitMasks` record per split, out-of-fold and test alike;
4. measure each post-processing rule on the out-of-fold masks and apply the rules kept to
   the test masks (`postprocess`);
5. write ``submission.csv`` (validated, atomic), ``oof.csv`` (the out-of-fold masks, for
   ``python -m salt.score``) and mosaic pictures; build the report once from the finished
   records (`report.build_report`) and write ``report.json`` / ``report.md``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from salt import CONF_DIR
from salt.errors import SaltError
from salt.masks import all_salt
from salt.mosaic import AssemblySettings, mosaics_for, read_mosaics
from salt.prediction.ensemble import PreparedSplits, ensemble_means, split_ids
from salt.prediction.inference import INFERENCE_KEYS, InferenceSettings
from salt.prediction.pictures import prediction_pictures
from salt.prediction.postprocess import PostprocessSettings, Rule, apply_rule
from salt.prediction.postprocess.grid import MosaicGrid, TileMasks
from salt.prediction.postprocess.measure import measure_groups, measure_rules
from salt.prediction.report import build_report, write_report
from salt.prediction.runs import Run, find_runs
from salt.prediction.splits import SplitMasks, SplitMeans, binarise, choose_thresholds, empty_baseline, split_score
from salt.settings import settings_at_keys
from salt.submission import decode_rles, read_rles, write_submission


@dataclass(frozen=True)
class PredictionResult:
    """What `predict` wrote and the figures a caller prints.

    oof_score: out-of-fold score after post-processing (None without out-of-fold tiles);
    oof_score_before: before it; empty_baseline: every out-of-fold tile predicted empty.
    """

    out_dir: Path
    submission: Path | None
    oof_submission: Path | None
    report_json: Path
    report_markdown: Path
    pictures: list[Path] = field(default_factory=list)
    oof_score: float | None = None
    oof_score_before: float | None = None
    empty_baseline: float | None = None
    report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    """What a prediction reads before predicting: runs, data, labels, settings."""

    runs: list[Run]
    data_dir: Path
    cache_dir: Path
    out: Path
    settings: InferenceSettings
    post: PostprocessSettings
    rules: list[Rule]
    train_ids: np.ndarray
    truth: np.ndarray
    test_ids: np.ndarray | None
    want_oof: bool

    @classmethod
    def from_config(cls, cfg: DictConfig) -> _Job:
        want_test, want_oof = bool(cfg.test), bool(cfg.oof.enabled)
        if not (want_test or want_oof):
            raise SaltError("test=false and oof.enabled=false: nothing to predict")
        post = PostprocessSettings.from_config(cfg.get("postprocess"))
        rules = post.enabled()
        # runs=outputs/x (one string) is as welcome as runs=[outputs/x,outputs/y].
        runs = find_runs([cfg.runs] if isinstance(cfg.runs, str) else list(cfg.runs or []), str(cfg.checkpoint))
        data_dir = shared_data_dir(runs, cfg.get("data_dir"))
        # The train masks are read even for a test-only prediction: post-processing uses them.
        train_rles = read_rles(data_dir / "train.csv")
        train_ids = np.array(list(train_rles))
        return cls(
            runs=runs,
            data_dir=data_dir,
            cache_dir=Path(cfg.paths.cache_dir),
            out=Path(cfg.out),
            settings=inference_settings(cfg),
            post=post,
            rules=rules,
            train_ids=train_ids,
            truth=decode_rles(train_rles, train_ids.tolist()),
            test_ids=split_ids(data_dir, "test") if want_test else None,
            want_oof=want_oof,
        )


class _Clock:
    """Logs ``[  t s] message`` per step and adds the step's time to `timings`."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log, self.start, self.timings = log, time.perf_counter(), {}

    def done(self, step: str, message: str) -> None:
        seconds = time.perf_counter() - self.start
        self.timings[step] = round(self.timings.get(step, 0.0) + seconds, 2)
        self.log(f"[{seconds:7.1f} s] {message}")
        self.start = time.perf_counter()


def predict(cfg: DictConfig, *, log: Callable[[str], None] = print) -> PredictionResult:
    """Run the whole prediction as conf/predict.yaml describes (see the module docstring)."""
    clock = _Clock(log)
    job = _Job.from_config(cfg)
    clock.done("find runs", f"{len(job.runs)} run(s) on {job.data_dir}: {', '.join(run.name for run in job.runs)}")

    test_mean, oof_mean = ensemble_means(
        job.runs, job.settings, PreparedSplits(job.data_dir, job.cache_dir),
        test_ids=job.test_ids, train_ids=job.train_ids if job.want_oof else None, log=log,
    )
    clock.done("predict", f"{len(job.runs)} run(s) predicted")

    oof_means = None if oof_mean is None else SplitMeans.of(oof_mean)  # read once: search and masks
    thresholds, search = choose_thresholds(cfg, oof_means, job.truth)
    oof = None if oof_means is None else binarise("out-of-fold", job.train_ids, oof_means, thresholds)
    test = None if test_mean is None else binarise("test", job.test_ids, SplitMeans.of(test_mean), thresholds)
    del oof_mean, test_mean, oof_means
    if oof is not None:
        best = search.best
        clock.done(
            "out-of-fold score",
            f"out-of-fold: {int(oof.covered.sum())} tiles, score {split_score(oof, job.truth, 'before')['score']:.4f} "
            f"(every tile empty: {empty_baseline(oof, job.truth):.4f}); "
            f"best thresholds mask {best[0]}, empty {best[1]} → {best[2]:.4f}",
        )

    pictures_wanted = int(cfg.pictures.largest) > 0 or bool(cfg.pictures.get("ids"))
    table = _mosaic_table(job.post, job.data_dir, job.cache_dir) if job.rules or pictures_wanted else None
    post_block = _postprocess(job.rules, job.post, table, job.train_ids, job.truth, oof, test, job.data_dir, job.cache_dir, clock)
    for split in (oof, test):  # the all-salt rule again: post-processing may have filled a tile
        if split is not None:
            split.after[all_salt(split.after)] = False

    submission = None if test is None else write_submission(job.out / "submission.csv", test.ids.tolist(), test.after)
    oof_submission = None if oof is None else write_submission(job.out / "oof.csv", oof.ids[oof.covered].tolist(), oof.after[oof.covered])
    clock.done("write submissions", f"submission {submission}, out-of-fold masks {oof_submission}")
    pictures: list[Path] | None = None
    if pictures_wanted and table is not None and len(table):
        pictures = prediction_pictures(
            table, job.data_dir, job.out / "pictures", dict(zip(job.train_ids.tolist(), job.truth)), [oof, test],
            largest=int(cfg.pictures.largest), ids=list(cfg.pictures.get("ids") or []), scale=float(cfg.pictures.scale),
        )
        clock.done("pictures", f"{len(pictures)} mosaic picture(s) in {job.out / 'pictures'}")

    outputs = {"submission": submission, "out-of-fold masks": oof_submission, "pictures": None if pictures is None else job.out / "pictures"}
    report = build_report(
        runs=job.runs, checkpoint=str(cfg.checkpoint), data_dir=job.data_dir, settings=job.settings, train_ids=job.train_ids,
        truth=job.truth, thresholds=thresholds, search=search, oof=oof, test=test, postprocess=post_block, outputs=outputs,
        timings=clock.timings,
    )
    report_json, report_markdown = write_report(report, job.out)
    log(f"report: {report_markdown}")
    return PredictionResult(
        out_dir=job.out,
        submission=submission,
        oof_submission=oof_submission,
        report_json=report_json,
        report_markdown=report_markdown,
        pictures=pictures or [],
        oof_score=None if oof is None else report["oof"]["score"],
        oof_score_before=None if oof is None else report["oof"]["report"]["score"],
        empty_baseline=None if oof is None else report["oof"]["empty_baseline"],
        report=report,
    )


def predict_config(*overrides: str) -> DictConfig:
    """conf/predict.yaml composed with `overrides` (``"out=DIR"``, ``"crop=full"``, ...), as
    ``python predict.py`` would compose it; works inside another Hydra app (salt.demo) too."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose("predict", overrides=list(overrides))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("predict", overrides=list(overrides))


def predict_runs(runs: Sequence[str | os.PathLike], *overrides: str, log: Callable[[str], None] = print) -> PredictionResult:
    """`predict` on `runs` (run dirs, dirs above them, checkpoints; globs allowed) with
    conf/predict.yaml and `overrides`; e.g.
    ``predict_runs(["outputs/demo/tiny"], "out=outputs/demo/predict")``."""
    cfg = predict_config(*overrides)
    cfg.runs = [str(run) for run in runs]
    return predict(cfg, log=log)


def inference_settings(cfg: DictConfig) -> InferenceSettings:
    """The top-level keys of conf/predict.yaml (or section.yaml) that say how networks run."""
    return settings_at_keys(InferenceSettings, cfg, INFERENCE_KEYS)


def shared_data_dir(runs: list[Run], override: str | None) -> Path:
    """The data directory to predict: `override`, else the one every run was trained on."""
    if override:
        return Path(override)
    dirs = sorted({str(run.data_dir.resolve()) for run in runs})
    if len(dirs) > 1:
        raise SaltError(f"runs were trained on different data dirs ({', '.join(dirs)}); choose one with data_dir=PATH")
    return Path(dirs[0])


def _postprocess(
    rules: list[Rule],
    post: PostprocessSettings,
    table: pd.DataFrame | None,
    train_ids: np.ndarray,
    truth: np.ndarray,
    oof: SplitMasks | None,
    test: SplitMasks | None,
    data_dir: Path,
    cache_dir: Path,
    clock: _Clock,
) -> dict:
    """Measure the rules on out-of-fold masks, apply those kept to the test masks; fills
    `oof.after` and `test.after`; returns the report's post-processing block."""
    for masks in (oof, test):
        if masks is not None:
            masks.after = masks.before.copy()
    block: dict = {"rules": [], "keep": post.keep, "measured": False}
    if not rules:
        return block
    grid = MosaicGrid.from_table(table, [*train_ids.tolist(), *([] if test is None else test.ids.tolist())])
    clock.done("mosaics", f"mosaics: {table.mosaic_id.nunique()} with {len(table)} tiles")
    kept = rules
    if oof is not None:
        measure, groups = measure_groups(post.measure_folds, data_dir, cache_dir, train_ids)
        measured = measure_rules(
            rules,
            truth=truth,
            oof=oof.before,
            covered=oof.covered,
            groups=groups,
            grid=grid,
            test=None if test is None else test.before,
            keep=post.keep,
            min_gain=post.min_gain,
            log=clock.log,
        )
        oof.after = measured.masks
        kept = [rule for rule in rules if rule.name in measured.kept]
        block.update(
            measured=True,
            measure=f"{measure.kind} groups, k={measure.k}",
            score_before=measured.score_before,
            score_after=measured.score_after,
            rules=[m.as_dict() for m in measured.measures],
        )
        clock.done(
            "measure rules",
            f"post-processing on out-of-fold: {measured.score_before:.4f} → {measured.score_after:.4f}, kept {', '.join(measured.kept) or 'none'}",
        )
    else:
        block["rules"] = [{"name": rule.name} for rule in rules]
    if test is not None:
        # At test time every train mask is known and every test tile is predicted.
        state = TileMasks(np.concatenate([truth, test.before]), np.arange(len(train_ids) + len(test.ids)) < len(train_ids), grid)
        changed = {rule.name: apply_rule(rule, state) for rule in kept}
        test.after = state.masks[len(train_ids) :]
        for entry in block["rules"]:
            entry["test_tiles_changed"] = changed.get(entry["name"], 0)
        summary = ", ".join(f"{name} {n} tiles" for name, n in changed.items()) or "no rule kept"
        clock.done("post-process test", f"post-processing on test: {summary}")
    return block


def _mosaic_table(post: PostprocessSettings, data_dir: Path, cache_dir: Path) -> pd.DataFrame:
    if post.mosaics:
        return read_mosaics(post.mosaics)
    return mosaics_for(data_dir, cache_dir, AssemblySettings.from_config(post.assembly), log=lambda line: None)
