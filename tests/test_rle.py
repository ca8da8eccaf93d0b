import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from salt import rle
from salt.data.tiles import load_split
from salt.errors import RLEError, SubmissionError
from salt.submission import read_rles


def test_hand_computed_column_major_one_indexed():
    mask = np.zeros((101, 101), dtype=bool)
    mask[0, 0] = mask[1, 0] = True  # pixels 1 and 2: the top of the first column
    mask[0, 1] = True  # pixel 102: the top of the second column
    mask[100, 100] = True  # the last pixel
    assert rle.encode(mask) == "1 2 102 1 10201 1"
    assert (rle.decode("1 2 102 1 10201 1") == mask).all()


def test_empty_mask_is_empty_string():
    assert rle.encode(np.zeros((101, 101), dtype=bool)) == ""
    assert not rle.decode("").any()
    assert not rle.decode("   ").any()


def test_run_across_a_column_boundary():
    mask = rle.decode("100 4", shape=(101, 101))
    assert mask[99:, 0].all() and mask[:2, 1].all() and mask.sum() == 4


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_encode_then_decode_is_identity(mask):
    assert (rle.decode(rle.encode(mask), mask.shape) == mask).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), max_size=30))
def test_decode_then_encode_is_identity_for_canonical_runs(gaps_and_lengths):
    # Runs separated by at least one background pixel are the canonical form.
    runs, end = [], 0
    for gap, length in gaps_and_lengths:
        start = end + gap + (1 if runs else 0)
        runs += [start, length]
        end = start + length - 1
    text = " ".join(map(str, runs))
    shape = (50, max(1, -(-end // 50)))
    assert rle.encode(rle.decode(text, shape)) == text


@pytest.mark.parametrize(
    "text, problem",
    [
        ("1 2 3", "odd number"),
        ("1 x", "'x' is not"),
        ("1 -2", "'-2' is not"),
        ("1.5 2", "'1.5' is not"),
        ("0 3", "1-indexed"),
        ("5 0", "length 0"),
        ("10 5 12 3", "must not overlap"),
        ("50 2 10 3", "must be sorted"),
        ("10200 3", "past the last pixel 10201"),
        # too large for int64: a clear error, not an OverflowError
        ("99999999999999999999999 1", "'99999999999999999999999' is larger than the 10201 pixels of a 101x101 tile"),
        ("1 10202", "'10202' is larger than the 10201 pixels"),
        # digits of other scripts: int() reads '١٢' (Arabic-Indic) as 12, the competition would not
        ("\u0661\u0662 3", "'\u0661\u0662' is not a non-negative integer"),
        ("1 \uff13", "'\uff13' is not"),  # fullwidth 3
        ("\u00b2 1", "'\u00b2' is not"),  # superscript 2: isdigit() yet int() refuses it
    ],
)
def test_malformed_rle_is_refused_with_the_reason(text, problem):
    with pytest.raises(RLEError, match=problem):
        rle.decode(text)


def test_non_ascii_and_huge_values_in_a_file_name_the_line(tmp_path):
    path = tmp_path / "sub.csv"
    path.write_text("id,rle_mask\na,1 2\nb,\u0661\u0662 3\n", encoding="utf-8")
    with pytest.raises(SubmissionError, match="sub.csv, line 3 \\(id b\\): malformed rle_mask: '\u0661\u0662' is not"):
        read_rles(path)
    path.write_text("id,rle_mask\na,99999999999999999999999 1\n")
    with pytest.raises(SubmissionError, match="sub.csv, line 2 \\(id a\\): malformed rle_mask: '9+' is larger than"):
        read_rles(path)


def test_train_csv_decodes_to_the_mask_pngs_for_every_real_tile(real_data):
    tiles = load_split(real_data, "train")
    rles = read_rles(real_data / "train.csv")
    assert len(rles) == len(tiles) == 3500
    mismatched = [i for i, tile_id in enumerate(tiles.ids) if not (rle.decode(rles[tile_id]) == tiles.masks[i]).all()]
    assert mismatched == []
    # and encoding the PNG masks gives back the published strings
    assert all(rle.encode(mask) == rles[tile_id] for tile_id, mask in zip(tiles.ids, tiles.masks))
