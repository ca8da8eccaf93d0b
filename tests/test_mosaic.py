"""Mosaic assembly: exact reassembly of synthetic sections, constant and duplicate tiles,
brightness changes, contradictions, the table, the cache, the CLI and the pictures."""

from __future__ import annotations

import csv
from functools import lru_cache

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salt import synthetic
from salt.data.histogram import match_histograms, mean_histogram
from salt.errors import DataError
from salt.mosaic import AssemblySettings, assemble_tiles, mosaic_table, mosaics_for, read_mosaics, write_mosaics
from salt.mosaic.assembly import assemble
from salt.mosaic.edges import BOTTOM, RIGHT, near_constant_tiles
from salt.mosaic.quality import neighbour_pairs, score_pairs, seam_agreement
from salt.mosaic.render import MosaicPicture, render

from conftest import run_module


@lru_cache(maxsize=None)
def sections(seed: int = 3, count: int = 2, cols: int = 8, rows: int = 5):
    """Images (N, 101, 101) uint8 and true (section, x, y) of synthetic tiles.

    Seed 3 with 2 sections of 8 × 5 tiles has no tile that cannot be placed (its salt
    interiors and no-data corners leave every usable tile a good seam): a whole-section
    reassembly can be demanded of it.
    """
    tiles = synthetic.generate_tiles(seed=seed, sections=count, section_cols=cols, section_rows=rows)
    images = np.stack([t.image for t in tiles])
    truth = np.array([(t.mosaic_id, t.x, t.y) for t in tiles])
    return images, truth


def placed_pairs(layout) -> np.ndarray:
    mosaic = np.where(layout.sizes() >= 2, layout.mosaic, -1)
    return neighbour_pairs(mosaic, layout.x, layout.y)


def true_pairs(truth: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    pairs = neighbour_pairs(truth[:, 0], truth[:, 1], truth[:, 2])
    if keep is not None:
        pairs = pairs[keep[pairs[:, 0]] & keep[pairs[:, 1]]]
    return pairs


def assert_grid_invariants(layout) -> None:
    """No cell holds two tiles; positions start at 0 in each mosaic."""
    cells = set(zip(layout.mosaic.tolist(), layout.x.tolist(), layout.y.tolist()))
    assert len(cells) == len(layout.mosaic)
    for m in np.unique(layout.mosaic):
        members = layout.mosaic == m
        assert layout.x[members].min() == 0 and layout.y[members].min() == 0


# --- reassembly ---------------------------------------------------------------------------


def test_synthetic_sections_are_reassembled_exactly_up_to_translation():
    images, truth = sections()
    result = assemble_tiles(images)
    layout, usable = result.layout, result.usable
    assert_grid_invariants(layout)
    for section in np.unique(truth[:, 0]):
        members = np.flatnonzero((truth[:, 0] == section) & usable)
        # One mosaic per section ...
        assert len(np.unique(layout.mosaic[members])) == 1
        # ... at the true positions, shifted by one offset.
        offset = truth[members, 1:] - np.stack([layout.x[members], layout.y[members]], axis=1)
        assert (offset == offset[0]).all()
    assert len(np.unique(layout.mosaic[usable])) == len(np.unique(truth[:, 0]))


def test_no_wrong_neighbours_and_nearly_all_true_ones_on_the_small_fixture(synthetic_tiles):
    images = np.stack([t.image for t in synthetic_tiles])
    truth = np.array([(t.mosaic_id, t.x, t.y) for t in synthetic_tiles])
    result = assemble_tiles(images)
    score = score_pairs(placed_pairs(result.layout), true_pairs(truth, result.usable))
    assert score.wrong == 0
    assert score.recall >= 0.9


def test_constant_and_near_constant_tiles_are_left_out():
    images, truth = sections()
    black = np.zeros((6, 101, 101), np.uint8)  # identical all-black tiles, as in the real data
    sliver = np.zeros((101, 101), np.uint8)
    sliver[-3:, :20] = images[0][-3:, :20]  # no data but for a sliver: a lone spike
    white = np.full((101, 101), 255, np.uint8)
    extra = np.concatenate([black, sliver[None], white[None]])
    result = assemble_tiles(np.concatenate([images, extra]))
    layout, n = result.layout, len(images)
    sizes = layout.sizes()
    assert (sizes[n:] == 1).all(), "constant tiles must stay singletons"
    assert not result.usable[n:].any()
    # The sections are assembled as without them.
    alone = assemble_tiles(images).layout
    assert score_pairs(placed_pairs(layout), placed_pairs(alone)).wrong == 0
    assert len(placed_pairs(layout)) == len(placed_pairs(alone))


def test_near_constant_share():
    tile = np.zeros((1, 101, 101), np.uint8)
    tile[0, :5] = np.arange(5 * 101).reshape(5, 101) % 256  # 5 % of the tile carries data
    assert near_constant_tiles(tile, 0.9).all()
    assert not near_constant_tiles(tile, 0.99).any()


def test_a_single_tile_and_no_tiles():
    images, _ = sections()
    result = assemble_tiles(images[:1])
    assert result.layout.sizes().tolist() == [1]
    assert mosaic_table(np.array(["a"]), result.layout).empty
    empty = assemble_tiles(np.zeros((0, 101, 101), np.uint8))
    assert len(empty.layout.mosaic) == 0


def test_duplicate_tiles_never_share_a_cell_or_glue_sections():
    images, truth = sections()
    copies = np.array([5, 12, 30])
    result = assemble_tiles(np.concatenate([images, images[copies]]))
    layout, n = result.layout, len(images)
    assert_grid_invariants(layout)
    pairs = placed_pairs(layout)
    # A duplicate may stand in for its original (they are the same picture); map it back.
    original = np.concatenate([np.arange(n), copies])
    mapped = np.stack([original[pairs[:, 0]], original[pairs[:, 1]], pairs[:, 2]], axis=1)
    score = score_pairs(mapped, true_pairs(truth, result.usable[:n]))
    assert score.wrong == 0
    # An ambiguous side links nothing, but the sections still come together around it.
    assert score.recall >= 0.9
    table = mosaic_table(np.array([f"t{i}" for i in range(len(layout.mosaic))]), layout)
    assert table.id.is_unique


def test_brightness_changed_neighbours_still_match_after_histogram_matching():
    images, truth = sections()
    # Every other tile in a checkerboard gets a strong non-linear brightness curve and an
    # offset, more than the affine change that per-side standardisation removes.
    changed = images.copy()
    board = (truth[:, 1] + truth[:, 2]) % 2 == 1
    curve = np.clip(255 * (np.arange(256) / 255) ** 0.3 * 0.8 + 40, 0, 255).astype(np.uint8)
    changed[board] = curve[images[board]]
    result = assemble_tiles(changed, AssemblySettings(histogram_match=True))
    truth_pairs = true_pairs(truth, result.usable)
    score = score_pairs(placed_pairs(result.layout), truth_pairs)
    assert score.wrong == 0
    assert score.correct == score.true
    # After histogram matching a changed tile and its unchanged neighbour are on one
    # grey scale again: their matched histograms are close, the raw ones are not.
    matched = match_histograms(changed, mean_histogram(changed))
    a, b = next((a, b) for a, b, d in truth_pairs if board[a] != board[b])
    assert abs(matched[a].mean() - matched[b].mean()) < abs(changed[a].mean() - changed[b].mean()) / 255


# --- the assembler on hand-made links ------------------------------------------------------


def test_contradicting_link_is_refused():
    # 0 1      links: 0→1 right, 0→2 bottom, 1→3 bottom, 2→3 right (a square), and a
    # 2 3      contradicting 2→4 right (4 would sit where 3 is).
    a = np.array([0, 0, 1, 2, 2])
    b = np.array([1, 2, 3, 3, 4])
    d = np.array([RIGHT, BOTTOM, BOTTOM, RIGHT, RIGHT])
    layout = assemble(5, a, b, d, np.arange(5))
    assert layout.sizes()[:4].tolist() == [4, 4, 4, 4] and layout.sizes()[4] == 1
    assert (layout.x[:4].tolist(), layout.y[:4].tolist()) == ([0, 1, 0, 1], [0, 0, 1, 1])
    assert layout.refused == 1


def test_loop_with_inconsistent_offset_is_refused():
    # 0→1 right, 1→2 bottom, and 0→2 right would put 2 both at (1, 1) and (1, 0).
    layout = assemble(3, np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([RIGHT, BOTTOM, RIGHT]), np.arange(3))
    assert (layout.x.tolist(), layout.y.tolist()) == ([0, 1, 1], [0, 0, 1])
    assert layout.refused == 1


def test_judge_sees_every_new_seam_link_first():
    seen = []

    def judge(link, upper, lower, kind):
        seen.append((link, list(zip(upper.tolist(), lower.tolist(), kind.tolist()))))
        return True

    # Two horizontal pairs (0 1) and (2 3), then 0→2 bottom joins them with two seams.
    assemble(4, np.array([0, 2, 0]), np.array([1, 3, 2]), np.array([RIGHT, RIGHT, BOTTOM]), np.arange(3), judge)
    link, seams = seen[-1]
    assert link == 2 and seams[0] == (0, 2, BOTTOM) and set(seams) == {(0, 2, BOTTOM), (1, 3, BOTTOM)}


def test_refused_join_is_retried_once_more_seams_vote():
    # 0→1 bottom is tried first and refused while it would be a lone seam; once 2 sits
    # right of 0 and 3 right of 1... the join has a second seam and is made.
    calls = []

    def judge(link, upper, lower, kind):
        calls.append(link)
        return len(upper) >= 2 or link != 0

    a, b = np.array([0, 0, 1]), np.array([1, 2, 3])
    d = np.array([BOTTOM, RIGHT, RIGHT])
    layout = assemble(4, a, b, d, np.arange(3), judge)
    assert layout.sizes().tolist() == [4, 4, 4, 4]
    assert calls.count(0) == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.sampled_from([BOTTOM, RIGHT])), max_size=40))
def test_any_links_give_a_valid_grid(links):
    links = [(a, b, d) for a, b, d in links if a != b]
    a = np.array([l[0] for l in links], dtype=np.int64)
    b = np.array([l[1] for l in links], dtype=np.int64)
    d = np.array([l[2] for l in links], dtype=np.int64)
    layout = assemble(12, a, b, d, np.arange(len(links)))
    assert_grid_invariants(layout)
    # Every link the layout agrees with is a real neighbour pair of it.
    pairs = {tuple(p) for p in neighbour_pairs(layout.mosaic, layout.x, layout.y).tolist()}
    agreed = sum((int(x), int(y), int(z)) in pairs for x, y, z in zip(a, b, d))
    assert agreed + layout.refused == len(links)


# --- quality measures ----------------------------------------------------------------------


def test_neighbour_pairs_and_scores():
    mosaic, x, y = np.array([0, 0, 0, 1, -1]), np.array([0, 1, 0, 0, 0]), np.array([0, 0, 1, 0, 0])
    pairs = neighbour_pairs(mosaic, x, y)
    assert {tuple(p) for p in pairs.tolist()} == {(0, 1, RIGHT), (0, 2, BOTTOM)}
    score = score_pairs(pairs, np.array([[0, 1, RIGHT], [1, 3, RIGHT]]))
    assert (score.true, score.found, score.correct, score.wrong) == (2, 2, 1, 1)
    with pytest.raises(ValueError):
        neighbour_pairs(np.array([0, 0]), np.array([0, 0]), np.array([0, 0]))


def test_seam_agreement_counts_only_labelled_pairs():
    masks = np.zeros((3, 101, 101), bool)
    masks[0, -1, :50] = True
    masks[1, 0, :50] = True
    pairs = np.array([[0, 1, BOTTOM], [0, 2, RIGHT]])
    agreement, seams = seam_agreement(pairs, masks, np.array([True, True, False]))
    assert (agreement, seams) == (1.0, 1)
    assert seam_agreement(pairs, masks, np.array([False, True, True]))[1] == 0


# --- table, cache and command line ---------------------------------------------------------


def test_table_round_trip_and_checks(tmp_path):
    images, _ = sections()
    ids = np.array([f"t{i:03d}" for i in range(len(images))])
    table = mosaic_table(ids, assemble_tiles(images).layout)
    assert list(table.columns) == ["id", "x", "y", "mosaic_id"]
    assert table.id.is_unique and table.groupby("mosaic_id").size().min() >= 2
    path = write_mosaics(table, tmp_path / "m.csv")
    pd.testing.assert_frame_equal(read_mosaics(path), table)
    clash = tmp_path / "clash.csv"
    clash.write_text("id,x,y,mosaic_id\na,0,0,0\nb,0,0,0\n")
    with pytest.raises(DataError, match="two tiles in cell"):
        read_mosaics(clash)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,x,y\na,0,0\n")
    with pytest.raises(DataError, match="header"):
        read_mosaics(bad)


def test_mosaics_for_caches_by_data_and_settings(synthetic_copy, tmp_path):
    logs = []
    first = mosaics_for(synthetic_copy, tmp_path / "cache", log=logs.append)
    second = mosaics_for(synthetic_copy, tmp_path / "cache", log=logs.append)
    pd.testing.assert_frame_equal(first, second)
    assert "from cache" in logs[-1]
    logs.clear()
    mosaics_for(synthetic_copy, tmp_path / "cache", AssemblySettings(max_ratio=0.5), log=logs.append)
    assert not any("from cache" in line for line in logs)
    with pytest.raises(Exception, match="inside the data dir"):
        mosaics_for(synthetic_copy, synthetic_copy / "cache")


def test_command_line_writes_the_table(synthetic_dir, tmp_path):
    out = tmp_path / "mosaics.csv"
    result = run_module("salt.mosaic", f"data.dir={synthetic_dir}", f"out={out}", f"paths.cache_dir={tmp_path / 'cache'}")
    assert result.returncode == 0, result.stderr
    table = read_mosaics(out)
    with (synthetic_dir / "layout.csv").open() as handle:
        truth = {row["id"]: (int(row["mosaic_id"]), int(row["x"]), int(row["y"])) for row in csv.DictReader(handle)}
    # Within each found mosaic every tile sits at its true cell, shifted by one offset.
    for _, rows in table.groupby("mosaic_id"):
        true = np.array([truth[i] for i in rows.id])
        assert len(set(true[:, 0])) == 1
        offset = true[:, 1:] - rows[["x", "y"]].to_numpy()
        assert (offset == offset[0]).all()
    missing = run_module("salt.mosaic", f"data.dir={tmp_path / 'nowhere'}", f"out={out}")
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: data dir")


# --- pictures ---------------------------------------------------------------------------------


def test_picture_layout_colours_and_outline():
    images, _ = sections()
    masks = np.zeros((3, 101, 101), bool)
    masks[0, 40:, :] = True
    picture = MosaicPicture(
        images=images[:3],
        x=np.array([0, 1, 0]),
        y=np.array([0, 0, 1]),
        train=np.array([True, False, True]),
        masks=masks,
        predicted=masks,
        has_prediction=np.array([True, False, False]),
        title="test",
    )
    image = render(picture)
    header = image.shape[0] - 2 * 101
    assert image.shape == (header + 202, 202, 3)
    body = image[header:].astype(int)
    # The empty cell (x=1, y=1) is the background colour; the test tile is tinted blue.
    assert (body[101:, 101:] == (60, 30, 20)).all()
    test_tile = body[:101, 101:]
    assert (test_tile[..., 0] >= test_tile[..., 2]).all() and (test_tile[..., 0] > test_tile[..., 2]).any()
    # Salt is tinted red; the predicted outline is green where the mask starts (row 40).
    salt = body[60:101, :101]
    assert (salt[..., 2] >= salt[..., 0]).all()
    assert (body[40, 10] == (60, 220, 60)).all()
    # No outline along the tile's own border where the mask runs off it.
    assert not (body[100, 10] == (60, 220, 60)).all()
    small = render(picture, scale=0.5)
    assert small.shape[1] == 101


def test_render_command_writes_pictures(synthetic_dir, tmp_path):
    out = tmp_path / "pics"
    result = run_module(
        "salt.mosaic.render",
        f"data.dir={synthetic_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"render.out={out}",
        "render.largest=2",
        f"render.predictions={synthetic_dir / 'train.csv'}",
    )
    assert result.returncode == 0, result.stderr
    pictures = sorted(out.glob("mosaic_*.png"))
    assert [p.name for p in pictures] == ["mosaic_0.png", "mosaic_1.png"]
    assert cv2.imread(str(pictures[0])).shape[2] == 3


# --- the real tiles ------------------------------------------------------------------------


def test_real_train_tiles_assemble_without_collisions(real_data):
    from salt.data.tiles import load_split

    train = load_split(real_data, "train")
    result = assemble_tiles(train.images)
    layout = result.layout
    assert_grid_invariants(layout)
    black = train.images.reshape(len(train), -1).max(axis=1) == 0
    assert black.sum() == 72 and (layout.sizes()[black] == 1).all()
    pairs = placed_pairs(layout)
    assert (layout.sizes() >= 2).sum() > 200
    # Masks continue across the seams far more often than between random tiles (~0.63).
    agreement, seams = seam_agreement(pairs, train.masks, np.ones(len(train), bool))
    assert seams > 100 and agreement > 0.75
