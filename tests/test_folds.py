"""Folds: mosaics kept whole, folds balanced, random folds stratified, files and commands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from salt.folds import (
    FoldSettings,
    describe,
    fold_table,
    folds_for,
    mosaic_folds,
    random_folds,
    read_folds,
    write_folds,
)
from salt.errors import DataError, SaltError
from salt.mosaic import AssemblySettings

from conftest import REPO, run_module


def competition_like(seed: int = 0, n: int = 3000):
    """Coverage like the competition's train set (about 40 % empty) and mosaics of 2–40
    tiles holding about a quarter of the tiles."""
    rng = np.random.default_rng(seed)
    coverage = np.where(rng.random(n) < 0.4, 0.0, rng.beta(0.7, 1.2, n))
    mosaic = np.full(n, -1)
    start, label = 0, 0
    while start < n // 4:
        size = int(rng.integers(2, 41))
        mosaic[start : start + size] = label
        start, label = start + size, label + 1
    order = rng.permutation(n)
    return coverage[order], mosaic[order]


def test_mosaic_folds_keep_mosaics_whole_and_are_balanced():
    coverage, mosaic = competition_like()
    folds = mosaic_folds(coverage, mosaic, k=6, seed=0)
    assert set(folds.tolist()) == set(range(6))
    for label in np.unique(mosaic[mosaic >= 0]):
        assert len(set(folds[mosaic == label].tolist())) == 1
    sizes = np.bincount(folds, minlength=6)
    assert sizes.max() - sizes.min() <= 1
    means = np.array([coverage[folds == f].mean() for f in range(6)])
    assert means.max() - means.min() < 0.001
    empties = np.array([(coverage[folds == f] == 0).mean() for f in range(6)])
    assert empties.max() - empties.min() < 0.005
    # The tiles outside mosaics stay stratified: each fold gets its share of the top
    # quarter of coverages.
    top = (mosaic < 0) & (coverage > np.quantile(coverage[mosaic < 0], 0.75))
    counts = np.bincount(folds[top], minlength=6)
    assert counts.max() - counts.min() <= 0.15 * counts.mean()


def test_mosaic_folds_with_a_mosaic_larger_than_a_fold():
    coverage, _ = competition_like(n=600)
    mosaic = np.full(600, -1)
    mosaic[:150] = 0  # more than 600 / 6 tiles
    folds = mosaic_folds(coverage, mosaic, k=6)
    assert len(set(folds[:150].tolist())) == 1
    others = np.bincount(np.delete(folds, np.arange(150)), minlength=6)
    assert others[folds[0]] == 0  # the big mosaic's fold takes nothing else
    assert np.sort(others)[1:].max() - np.sort(others)[1:].min() <= 1


def test_folds_are_deterministic_in_data_and_seed():
    coverage, mosaic = competition_like(n=600)
    assert (mosaic_folds(coverage, mosaic, 6, 1) == mosaic_folds(coverage, mosaic, 6, 1)).all()
    assert (mosaic_folds(coverage, mosaic, 6, 1) != mosaic_folds(coverage, mosaic, 6, 2)).any()
    assert (random_folds(coverage, 5, 1) == random_folds(coverage, 5, 1)).all()
    assert (random_folds(coverage, 5, 1) != random_folds(coverage, 5, 2)).any()


def test_random_folds_are_stratified_by_coverage():
    coverage, _ = competition_like()
    folds = random_folds(coverage, k=5, seed=3)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 1
    # Every stretch of the coverage distribution is spread evenly: per decile of
    # coverage (and the empty tiles), fold counts differ by at most 2.
    edges = np.quantile(coverage[coverage > 0], np.linspace(0, 1, 11))
    classes = np.where(coverage == 0, -1, np.clip(np.searchsorted(edges, coverage, side="right") - 1, 0, 9))
    for c in np.unique(classes):
        counts = np.bincount(folds[classes == c], minlength=5)
        assert counts.max() - counts.min() <= 2, (c, counts)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.integers(-1, 6)), min_size=1, max_size=80),
    st.integers(2, 7),
    st.integers(0, 3),
)
def test_any_input_gives_whole_mosaics_and_valid_folds(rows, k, seed):
    coverage = np.array([r[0] for r in rows])
    mosaic = np.array([r[1] for r in rows])
    folds = mosaic_folds(coverage, mosaic, k, seed)
    assert folds.min() >= 0 and folds.max() < k
    for label in np.unique(mosaic[mosaic >= 0]):
        assert len(set(folds[mosaic == label].tolist())) == 1
    random = random_folds(coverage, k, seed)
    sizes = np.bincount(random, minlength=k)
    assert sizes.max() - sizes.min() <= 1


def test_fold_csv_round_trip(tmp_path):
    coverage, mosaic = competition_like(n=50)
    table = fold_table(np.array([f"id{i}" for i in range(50)]), coverage, mosaic_folds(coverage, mosaic), mosaic)
    back = read_folds(write_folds(table, tmp_path / "folds.csv"))
    pd.testing.assert_frame_equal(back, table, atol=1e-6)
    assert list(describe(back).columns) == ["tiles", "mean_coverage", "empty_share", "mosaics"]
    (tmp_path / "bad.csv").write_text("id,fold,coverage,mosaic_id\na,x,0.1,-1\n")
    with pytest.raises(DataError, match="integers"):
        read_folds(tmp_path / "bad.csv")


def test_settings_are_checked():
    with pytest.raises(SaltError, match="folds.kind"):
        FoldSettings(kind="kfold", k=5, seed=0)
    with pytest.raises(SaltError, match="folds.k"):
        FoldSettings(kind="random", k=1, seed=0)
    with pytest.raises(SaltError, match=r"folds\.k: missing"):
        FoldSettings.from_config({"kind": "random", "seed": 0})
    assert FoldSettings.preset("random").k == 5 and FoldSettings.preset("mosaic", k=3).k == 3
    with pytest.raises(SaltError, match="unknown key"):
        AssemblySettings.from_config({"max_ratoi": 0.5})


def test_fold_configs_compose():
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("make_folds")
        assert (cfg.folds.kind, cfg.folds.k) == ("mosaic", 6)
        # Folds take the lone links post-processing refuses (a wrong join only merges two
        # groups); every other assembly setting is the mosaics' default.
        assert AssemblySettings.from_config(cfg.folds.assembly) == AssemblySettings(max_ratio=0.87)
        # The preset the code reads is the config's.
        assert AssemblySettings.from_config(FoldSettings.preset("mosaic").assembly) == AssemblySettings(max_ratio=0.87)
        cfg = compose("make_folds", ["folds=random"])
        assert (cfg.folds.kind, cfg.folds.k) == ("random", 5)
        cfg = compose("mosaic")
        assert AssemblySettings.from_config(cfg.assembly) == AssemblySettings()


def test_folds_from_a_data_dir_keep_the_dir_mosaics_whole(synthetic_copy, tmp_path):
    table = folds_for(synthetic_copy, tmp_path / "cache", FoldSettings.preset("mosaic", k=3), log=lambda _: None)
    train_ids = pd.read_csv(synthetic_copy / "train.csv", dtype=str).id
    assert sorted(table.id) == sorted(train_ids)
    grouped = table[table.mosaic_id >= 0].groupby("mosaic_id").fold.nunique()
    assert (grouped == 1).all()
    again = folds_for(synthetic_copy, tmp_path / "cache", FoldSettings.preset("mosaic", k=3), log=lambda _: None)
    pd.testing.assert_frame_equal(table, again)
    random = folds_for(synthetic_copy, tmp_path / "cache", FoldSettings.preset("random", k=4), log=lambda _: None)
    assert (random.mosaic_id == -1).all() and set(random.fold) == set(range(4))


def test_command_line_writes_folds(synthetic_dir, tmp_path):
    out = tmp_path / "folds.csv"
    result = run_module(
        "salt.folds", f"data.dir={synthetic_dir}", f"out={out}", f"paths.cache_dir={tmp_path / 'c'}", "folds=random"
    )
    assert result.returncode == 0, result.stderr
    table = read_folds(out)
    assert set(table.fold) == set(range(5))
