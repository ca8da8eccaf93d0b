import csv
import hashlib
import subprocess
import sys

import numpy as np

from salt import synthetic
from salt.data.tiles import load_split

from conftest import run_module


def edge_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two pixel lines; per-tile min-max normalisation does not change it."""
    a, b = a.astype(float) - a.mean(), b.astype(float) - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def read_layout(data_dir):
    with (data_dir / "layout.csv").open() as handle:
        return [(row["id"], int(row["x"]), int(row["y"]), int(row["mosaic_id"])) for row in csv.DictReader(handle)]


def test_layout_lists_every_tile_once_at_a_distinct_cell(synthetic_dir):
    layout = read_layout(synthetic_dir)
    train, test = load_split(synthetic_dir, "train"), load_split(synthetic_dir, "test")
    assert sorted(row[0] for row in layout) == sorted([*train.ids, *test.ids])
    cells = [(m, x, y) for _, x, y, m in layout]
    assert len(set(cells)) == len(cells)
    assert {m for m, _, _ in cells} == {0, 1}
    assert all(0 <= x < 6 and 0 <= y < 4 for _, x, y in cells)


def test_layout_neighbours_continue_each_other(synthetic_dir):
    """Tiles the layout puts side by side share their seismic reflectors and salt boundaries."""
    train, test = load_split(synthetic_dir, "train"), load_split(synthetic_dir, "test")
    images = dict(zip([*train.ids, *test.ids], [*train.images, *test.images]))
    masks = dict(zip(train.ids, train.masks))
    at = {(m, x, y): tile_id for tile_id, x, y, m in read_layout(synthetic_dir)}
    neighbours, mask_agreement = [], []
    for (m, x, y), tile_id in at.items():
        for other, edge, other_edge in (
            (at.get((m, x + 1, y)), np.s_[:, -1], np.s_[:, 0]),
            (at.get((m, x, y + 1)), np.s_[-1, :], np.s_[0, :]),
        ):
            if other is None:
                continue
            neighbours.append(edge_correlation(images[tile_id][edge], images[other][other_edge]))
            if tile_id in masks and other in masks:
                mask_agreement.append((masks[tile_id][edge] == masks[other][other_edge]).mean())
    rng = np.random.default_rng(0)
    ids = list(images)
    strangers = [
        abs(edge_correlation(images[a][:, -1], images[b][:, 0]))
        for a, b in (rng.choice(ids, 2, replace=False) for _ in range(200))
    ]
    assert len(neighbours) > 30
    assert np.median(neighbours) > 0.5 > 0.2 > np.median(strangers)
    assert np.mean(mask_agreement) > 0.95


def test_tiles_look_like_the_competitions(synthetic_tiles):
    masks = np.stack([tile.mask for tile in synthetic_tiles])
    images = np.stack([tile.image for tile in synthetic_tiles])
    coverage = masks.mean(axis=(1, 2))
    assert coverage.max() < 1.0  # no tile is all salt
    assert 0.15 < (coverage > 0).mean() < 0.85  # both salt and empty tiles are common
    spans = images.reshape(len(images), -1)
    constant = spans.max(axis=1) == spans.min(axis=1)
    assert (spans[~constant].min(axis=1) == 0).all() and (spans[~constant].max(axis=1) == 255).all()  # min-max normalised
    # Salt interiors are low-amplitude: tiles mostly inside salt vary less than sediment ones.
    inside = images[(coverage > 0.8)].std(axis=(1, 2)).mean() if (coverage > 0.8).any() else None
    outside = images[(coverage == 0) & ~constant].std(axis=(1, 2)).mean()
    assert inside is None or inside < outside * 1.5


def test_generator_is_deterministic_by_seed():
    first = synthetic.generate_tiles(seed=3, sections=1, section_cols=3, section_rows=2)
    again = synthetic.generate_tiles(seed=3, sections=1, section_cols=3, section_rows=2)
    other = synthetic.generate_tiles(seed=4, sections=1, section_cols=3, section_rows=2)
    assert [t.id for t in first] == [t.id for t in again]
    assert all((a.image == b.image).all() and (a.mask == b.mask).all() for a, b in zip(first, again))
    assert [t.id for t in first] != [t.id for t in other]


def test_cli_writes_the_competition_layout_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "syn"
    result = run_module("salt.synthetic", f"out={out}")
    assert result.returncode == 0, result.stderr
    for name in ("train.csv", "depths.csv", "sample_submission.csv", "layout.csv"):
        assert (out / name).is_file()
    train, test = load_split(out, "train"), load_split(out, "test")
    assert 150 < len(train) + len(test) <= 240
    # Tiles with no data (outside the survey) are black and byte-identical, as in the competition.
    black = [
        hashlib.sha256(path.read_bytes()).hexdigest()
        for split in (train, test)
        for tile_id, image in zip(split.ids, split.images)
        if image.max() == 0
        for path in (out / ("train" if split is train else "test") / "images" / f"{tile_id}.png",)
    ]
    assert len(black) > 0 and len(set(black)) == 1
    again = run_module("salt.synthetic", f"out={out}")
    assert again.returncode != 0
    assert again.stderr.strip().splitlines() == [f"error: {out}: directory exists and is not empty (set overwrite=true to replace it)"]
    assert not list(tmp_path.glob(".syn*"))  # nothing half-written beside it


# `python -m salt.synthetic ARGS`, with the writer of its PNGs (Path.write_bytes) failing
# like a full disk after a few tiles.
FULL_DISK = """
import errno, pathlib, runpy, sys

write_bytes, calls = pathlib.Path.write_bytes, []

def write_until_the_disk_is_full(path, data):
    calls.append(path)
    if len(calls) > 5:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return write_bytes(path, data)

pathlib.Path.write_bytes = write_until_the_disk_is_full
sys.argv = ["salt.synthetic", *sys.argv[1:]]
runpy.run_module("salt.synthetic", run_name="__main__", alter_sys=True)
"""


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    out = tmp_path / "syn"
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, f"out={out}", "sections=1", "section_cols=3", "section_rows=2"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: out {out}: no space left on device while writing synthetic tiles"]
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temporary beside it
