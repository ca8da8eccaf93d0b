"""Post-processing rules on hand-made mosaics whose expected masks are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from salt.errors import SaltError
from salt.geometry import TILE_SIZE as T
from salt.prediction.postprocess import RULES, PostprocessSettings, Rule, apply_rule
from salt.prediction.postprocess.below_salt import empty_below_salt
from salt.prediction.postprocess.corners import complete_corners, corner_mask, hermite_curve
from salt.prediction.postprocess.edges import is_vertical, salt_runs, salt_top_inside
from salt.prediction.postprocess.gaps import fill_column_gaps
from salt.prediction.postprocess.grid import NO_TILE, MosaicGrid, TileMasks
from salt.prediction.postprocess.holes import fill_holes
from salt.prediction.postprocess.measure import measure_rules
from salt.prediction.postprocess.vertical import copy_vertical_down, copy_vertical_up, terminal_level

EMPTY = np.zeros((T, T), dtype=bool)


def columns_salt(start: int, stop: int) -> np.ndarray:
    """A tile whose columns start..stop-1 are salt from top to bottom (vertical boundaries)."""
    mask = EMPTY.copy()
    mask[:, start:stop] = True
    return mask


def rows_salt(start: int) -> np.ndarray:
    """A tile salt from row `start` down (a flat salt top inside the tile)."""
    mask = EMPTY.copy()
    mask[start:] = True
    return mask


def layout(cells: list[list[tuple[np.ndarray, bool] | None]]) -> TileMasks:
    """One mosaic from rows of (mask, known) cells (None: no tile there)."""
    masks, known = [], []
    grid = np.full((len(cells), len(cells[0])), NO_TILE, dtype=np.int64)
    for row, line in enumerate(cells):
        for col, cell in enumerate(line):
            if cell is None:
                continue
            grid[row, col] = len(masks)
            masks.append(cell[0].copy())
            known.append(cell[1])
    return TileMasks(np.stack(masks), np.array(known), MosaicGrid((grid,), (0,)))


def mask_at(tiles: TileMasks, row: int, col: int) -> np.ndarray:
    return tiles.masks[tiles.grid.cells[0][row, col]]


# --- edges and the grid ---------------------------------------------------------------------


def test_salt_runs_vertical_and_terminal_tiles():
    line = np.zeros(10, dtype=bool)
    line[[0, 1, 5, 9]] = True
    assert salt_runs(line).tolist() == [[0, 2], [5, 6], [9, 10]]
    assert salt_runs(np.zeros(5, dtype=bool)).shape == (0, 2)
    assert is_vertical(columns_salt(20, 50)) and not is_vertical(EMPTY) and not is_vertical(rows_salt(50))
    assert salt_top_inside(rows_salt(50)) and not salt_top_inside(columns_salt(20, 50)) and not salt_top_inside(EMPTY)


def test_grid_from_table_places_tiles_and_leaves_out_unknown_ids():
    table = pd.DataFrame({"id": ["a", "b", "c", "d"], "x": [5, 6, 5, 0], "y": [2, 2, 4, 0], "mosaic_id": [0, 0, 0, 1]})
    grid = MosaicGrid.from_table(table, ["b", "a", "c"])
    assert grid.mosaic_ids == (0, 1)
    assert grid.cells[0].tolist() == [[1, 0], [-1, -1], [2, -1]]
    assert grid.cells[1].tolist() == [[-1]]  # d is not among the ids
    assert grid.without(np.array([False, True, False])).cells[0].tolist() == [[-1, 0], [-1, -1], [2, -1]]


# --- fill holes -----------------------------------------------------------------------------


def test_fill_holes_fills_enclosed_sediment_of_predicted_tiles_only():
    ring = rows_salt(40)
    ring[60:70, 30:40] = False  # enclosed: a hole
    notch = rows_salt(40)
    notch[90:, 50:60] = False  # open to the tile's bottom edge: not a hole
    tiles = layout([[(ring, False), (ring, True), (notch, False)]])
    assert fill_holes(tiles) == 1
    assert (mask_at(tiles, 0, 0) == rows_salt(40)).all()
    assert (mask_at(tiles, 0, 1) == ring).all()  # known: never edited
    assert (mask_at(tiles, 0, 2) == notch).all()


# --- vertical boundaries --------------------------------------------------------------------


def test_vertical_train_mask_is_copied_down_until_a_gap_or_a_known_tile():
    vertical = columns_salt(30, 70)
    noisy = EMPTY.copy()
    noisy[10:20, 10:20] = True
    tiles = layout(
        [
            [(vertical, True), (vertical, True)],
            [(EMPTY, False), (EMPTY, False)],
            [(noisy, False), (rows_salt(50), True)],
            [None, (EMPTY, False)],
            [(EMPTY, False), (EMPTY, False)],
        ]
    )
    assert copy_vertical_down(tiles) == 3
    assert (mask_at(tiles, 1, 0) == vertical).all() and (mask_at(tiles, 2, 0) == vertical).all()
    assert not mask_at(tiles, 4, 0).any()  # below a gap: the column may not continue
    assert (mask_at(tiles, 1, 1) == vertical).all()
    assert not mask_at(tiles, 3, 1).any() and not mask_at(tiles, 4, 1).any()  # below a known tile that is not vertical


def test_vertical_train_mask_is_copied_up_to_the_terminal_level():
    vertical = columns_salt(30, 70)
    top_of_salt = rows_salt(60)  # the salt body starts in this tile: the terminal level is row 1
    tiles = layout(
        [
            [(EMPTY, False), (EMPTY, False)],
            [(EMPTY, False), (top_of_salt, True)],
            [(EMPTY, False), (EMPTY, True)],
            [(EMPTY, False), (EMPTY, True)],
            [(vertical, True), (EMPTY, True)],
        ]
    )
    assert terminal_level(tiles, tiles.grid.cells[0]) == 1
    assert copy_vertical_up(tiles) == 2
    assert (mask_at(tiles, 3, 0) == vertical).all() and (mask_at(tiles, 2, 0) == vertical).all()
    assert not mask_at(tiles, 1, 0).any() and not mask_at(tiles, 0, 0).any()


def test_copy_up_stops_at_a_predicted_salt_top():
    vertical = columns_salt(30, 70)
    tiles = layout([[(EMPTY, False)], [(rows_salt(70), False)], [(EMPTY, False)], [(vertical, True)]])
    # The predicted tile at row 1 holds a salt top, which makes row 1 the terminal level too;
    # with it as the only stop, only row 2 is copied into.
    assert copy_vertical_up(tiles) == 1
    assert (mask_at(tiles, 2, 0) == vertical).all()
    assert (mask_at(tiles, 1, 0) == rows_salt(70)).all() and not mask_at(tiles, 0, 0).any()


# --- below a full salt edge -----------------------------------------------------------------


def test_tiles_below_a_train_tile_with_an_all_salt_bottom_edge_are_emptied():
    some = rows_salt(80)
    tiles = layout(
        [
            [(some, False), (some, False)],
            [(rows_salt(50), True), (columns_salt(0, 50), True)],  # full bottom edge; half bottom edge
            [(some, False), (some, False)],
            [None, None],
            [(some, False), (some, False)],
            [(rows_salt(90), True), None],  # a new salt top: the flag follows it (bottom full again)
            [(some, False), None],
        ]
    )
    assert empty_below_salt(tiles) == 3
    assert mask_at(tiles, 0, 0).any()  # above: untouched
    assert not mask_at(tiles, 2, 0).any() and not mask_at(tiles, 4, 0).any() and not mask_at(tiles, 6, 0).any()
    assert mask_at(tiles, 2, 1).any() and mask_at(tiles, 4, 1).any()


def test_an_empty_train_tile_under_the_edge_keeps_it_and_a_partial_one_ends_it():
    some = rows_salt(80)
    tiles = layout([[(rows_salt(50), True)], [(EMPTY, True)], [(some, False)], [(columns_salt(0, 20), True)], [(some, False)]])
    assert empty_below_salt(tiles) == 1
    assert not mask_at(tiles, 2, 0).any() and mask_at(tiles, 4, 0).any()


# --- gaps in a column -----------------------------------------------------------------------


def test_column_gap_between_agreeing_train_tiles_is_interpolated():
    upper = EMPTY.copy()
    upper[60:, 30:60] = True  # bottom row: salt in columns 30..59
    lower = EMPTY.copy()
    lower[:40, 60:90] = True  # top row: salt in columns 60..89
    tiles = layout([[(upper, True)], [(EMPTY, False)], [(lower, True)]])
    assert fill_column_gaps(tiles) == 1
    middle = mask_at(tiles, 1, 0)
    # Pixel rows run from the upper tile's last row (0) to the lower tile's first (102):
    # the middle tile's row r sits at (r + 1) / 102 of the way.
    for row in (0, 50, 100):
        t = (row + 1) / 102
        expected = np.zeros(T, dtype=bool)
        expected[round(30 + 30 * t) : round(60 + 30 * t)] = True
        assert (middle[row] == expected).all(), row


def test_column_gap_is_left_alone_when_edges_disagree_or_too_far_apart():
    two_runs = EMPTY.copy()
    two_runs[-1, 10:20] = two_runs[-1, 50:60] = True
    one_run = columns_salt(10, 60)
    noisy = EMPTY.copy()
    noisy[5, 5] = True
    tiles = layout([[(two_runs, True)], [(noisy, False)], [(one_run, True)]])
    assert fill_column_gaps(tiles) == 0 and (mask_at(tiles, 1, 0) == noisy).all()
    far = layout([[(one_run, True)], [(EMPTY, False)], [(EMPTY, False)], [(one_run, True)]])
    assert fill_column_gaps(far, max_tiles=1) == 0
    assert fill_column_gaps(far, max_tiles=2) == 2 and (mask_at(far, 1, 0) == one_run).all()


# --- corners --------------------------------------------------------------------------------


def dome_section(cx: float, cy: float, radius: float) -> np.ndarray:
    """(2·101, 2·101) bool section of 2 × 2 tiles holding a disc of salt."""
    y, x = np.mgrid[0 : 2 * T, 0 : 2 * T] + 0.5
    return (x - cx) ** 2 + (y - cy) ** 2 < radius**2


def split_section(section: np.ndarray) -> list[list[np.ndarray]]:
    return [[section[r * T : (r + 1) * T, c * T : (c + 1) * T] for c in range(2)] for r in range(2)]


@pytest.mark.parametrize("cx, cy, radius", [(140, 140, 75), (150, 130, 70)])
def test_small_missed_corner_is_completed_close_to_the_true_boundary(cx, cy, radius):
    # A disc centred in the bottom-right tile whose boundary cuts the top-left tile's corner.
    (corner, beside), (below, diagonal) = split_section(dome_section(cx, cy, radius))
    assert 0 < corner.mean() < 0.05  # the truth: a small corner of salt, missed by the prediction
    tiles = layout([[(EMPTY, False), (beside, True)], [(below, True), (diagonal, True)]])
    assert complete_corners(tiles) == 1
    completed = mask_at(tiles, 0, 0)
    iou = (completed & corner).sum() / (completed | corner).sum()
    assert iou > 0.9, iou


def test_bottom_left_corner_is_the_mirror_image():
    section = dome_section(cx=140, cy=140, radius=75)[:, ::-1]
    (beside, corner), (diagonal, below) = split_section(section)
    tiles = layout([[(beside, True), (EMPTY, False)], [(diagonal, True), (below, True)]])
    assert complete_corners(tiles) == 1
    completed = mask_at(tiles, 0, 1)
    assert (completed & corner).sum() / (completed | corner).sum() > 0.9


def test_no_corner_without_crossings_or_when_the_tile_already_has_salt_or_the_corner_is_large():
    (corner, beside), (below, diagonal) = split_section(dome_section(cx=140, cy=140, radius=75))
    assert corner_mask(EMPTY, beside, diagonal, side=1) is None  # nothing crosses the bottom edge
    assert corner_mask(below, beside, ~diagonal, side=1) is None  # the diagonal tile disagrees
    predicted = layout([[(corner, False), (beside, True)], [(below, True), (diagonal, True)]])
    assert complete_corners(predicted) == 0  # the tile already has its salt
    (corner, beside), (below, diagonal) = split_section(dome_section(cx=130, cy=130, radius=110))
    assert corner.mean() > 0.25
    tiles = layout([[(EMPTY, False), (beside, True)], [(below, True), (diagonal, True)]])
    assert complete_corners(tiles, max_area=0.25) == 0


def test_hermite_curve_meets_its_ends_with_the_given_directions():
    start, stop = np.array([40.0, 101.0]), np.array([101.0, 30.0])
    up, right = np.array([-1.0, -4.0]), np.array([4.0, -1.0])
    curve = hermite_curve(start, stop, up, right, samples=2001)
    assert np.allclose(curve[0], start) and np.allclose(curve[-1], stop)
    for end, direction in ((curve[1] - curve[0], up), (curve[-1] - curve[-2], right)):
        cosine = end @ direction / np.linalg.norm(end) / np.linalg.norm(direction)
        assert cosine > 0.9999  # continuous first derivative: the same direction at the joint


# --- every rule -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(RULES))
def test_no_rule_edits_a_known_tile(name):
    rng = np.random.default_rng(0)
    shapes = [columns_salt(20, 70), rows_salt(50), EMPTY, rows_salt(0)[:, ::-1] & columns_salt(0, 40)]
    cells = [[(shapes[rng.integers(len(shapes))], bool(rng.random() < 0.5)) for _ in range(4)] for _ in range(5)]
    tiles = layout(cells)
    known_before = tiles.masks[tiles.known].copy()
    apply_rule(Rule(name, RULES[name]), tiles)
    assert (tiles.masks[tiles.known] == known_before).all()


def test_apply_rule_empties_predicted_tiles_left_all_salt():
    full = np.ones((T, T), dtype=bool)
    tiles = layout([[(columns_salt(0, T), True)], [(EMPTY, False)]])
    assert apply_rule(Rule("vertical_down", copy_vertical_down), tiles) == 1
    assert not mask_at(tiles, 1, 0).any() and (mask_at(tiles, 0, 0) == full).all()


# --- measuring and keeping ------------------------------------------------------------------


def test_measure_keeps_the_rule_that_helps_and_drops_the_one_that_hurts():
    # Train tiles in one column: a vertical mask on top, two more vertical tiles below whose
    # out-of-fold predictions missed the salt. Copying down repairs them; emptying every
    # prediction (a rule that hurts) does not.
    vertical = columns_salt(30, 70)
    truth = np.stack([vertical, vertical, vertical])
    oof = np.stack([vertical, EMPTY, EMPTY])
    grid = MosaicGrid((np.array([[0], [1], [2]]),), (0,))

    def empty_everything(tiles: TileMasks) -> int:
        tiles.masks[~tiles.known] = False
        return int((~tiles.known).sum())

    rules = [Rule("vertical_down", copy_vertical_down), Rule("empty_everything", empty_everything)]
    measured = measure_rules(
        rules, truth=truth, oof=oof, covered=np.ones(3, dtype=bool), groups=np.array([0, 1, 2]), grid=grid
    )
    assert measured.score_before == pytest.approx(1 / 3)
    copy, empty = measured.measures
    assert copy.kept and copy.sequence_gain == pytest.approx(2 / 3) and copy.alone_gain == pytest.approx(2 / 3)
    assert not empty.kept and empty.sequence_gain == pytest.approx(-1.0) and empty.alone_gain == pytest.approx(-1 / 3)
    assert measured.kept == ["vertical_down"] and measured.score_after == pytest.approx(1.0)
    assert (measured.masks == truth).all()
    everything = measure_rules(rules, truth=truth, oof=oof, covered=np.ones(3, dtype=bool), groups=np.array([0, 1, 2]), grid=grid, keep="all")
    assert everything.kept == ["vertical_down", "empty_everything"] and everything.score_after == pytest.approx(0.0)


def test_settings_refuse_unknown_rules_keep_modes_and_parameters():
    with pytest.raises(SaltError, match="unknown rule 'holes'.*fill_holes"):
        PostprocessSettings.from_config({"rules": {"holes": True}})
    with pytest.raises(SaltError, match="keep='some'"):
        PostprocessSettings.from_config({"keep": "some"})
    with pytest.raises(SaltError, match="params.corners: max_pixels not all accepted; it takes max_salt_pixels"):
        PostprocessSettings.from_config({"rules": {"corners": True}, "params": {"corners": {"max_pixels": 3}}}).enabled()
    settings = PostprocessSettings.from_config({"rules": {"corners": True, "fill_holes": True, "vertical_up": False}})
    assert [rule.name for rule in settings.enabled()] == ["fill_holes", "corners"]  # the fixed order
