import numpy as np
import pytest

from salt import rle
from salt.errors import SubmissionError
from salt.submission import read_rles, validate_submission, write_submission

from conftest import run_module

IDS = ["aaaa000001", "aaaa000002", "aaaa000003"]


def some_masks():
    masks = np.zeros((3, 101, 101), dtype=bool)
    masks[1, 20:40, 30:90] = True
    masks[2, 90:, :] = True
    return masks


def write_csv(path, rows):
    path.write_text("id,rle_mask\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return path


def test_written_submission_validates_and_round_trips(tmp_path):
    path = write_submission(tmp_path / "sub.csv", IDS, some_masks())
    rles = validate_submission(path, IDS)
    assert list(rles) == IDS and rles["aaaa000001"] == ""
    assert (rle.decode(rles["aaaa000002"]) == some_masks()[1]).all()
    assert [p.name for p in tmp_path.iterdir()] == ["sub.csv"]  # no temporary file left


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(SubmissionError, match="duplicate ids"):
        write_submission(tmp_path / "sub.csv", [IDS[0], IDS[0], IDS[1]], some_masks())
    with pytest.raises(ValueError, match="shape"):
        write_submission(tmp_path / "sub.csv", IDS, some_masks()[:2])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "rows, problem",
    [
        ([(IDS[0], ""), (IDS[1], "")], "1 expected id\\(s\\) missing, e.g. aaaa000003"),
        ([(IDS[0], ""), (IDS[1], ""), (IDS[2], ""), ("zzz", "")], "1 unexpected id\\(s\\), e.g. zzz"),
        ([(IDS[0], ""), (IDS[1], ""), (IDS[1], ""), (IDS[2], "")], "line 4: duplicate id 'aaaa000002'"),
        ([(IDS[0], "3 2 1 1"), (IDS[1], ""), (IDS[2], "")], "line 2 \\(id aaaa000001\\): malformed rle_mask: run 2"),
        ([(IDS[0], "10201 2"), (IDS[1], ""), (IDS[2], "")], "past the last pixel"),
    ],
)
def test_validator_refuses_what_the_competition_would(tmp_path, rows, problem):
    with pytest.raises(SubmissionError, match=problem):
        validate_submission(write_csv(tmp_path / "sub.csv", rows), IDS)


def test_wrong_header_and_missing_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,mask\nx,\n")
    with pytest.raises(SubmissionError, match="header is 'id,mask'"):
        read_rles(bad)
    with pytest.raises(SubmissionError, match="nothing.csv: file not found"):
        read_rles(tmp_path / "nothing.csv")


def test_score_cli_on_perfect_and_partial_submissions(tmp_path, synthetic_dir):
    truth = synthetic_dir / "train.csv"
    perfect = run_module("salt.score", str(truth), str(truth))
    assert perfect.returncode == 0, perfect.stderr
    assert perfect.stdout.strip().splitlines()[-1] == "score: 1.0000"
    # Everything empty scores the share of empty tiles.
    rows = read_rles(truth)
    empty = write_csv(tmp_path / "empty.csv", [(tile_id, "") for tile_id in rows] + [("extra00000", "")])
    result = run_module("salt.score", str(truth), str(empty))
    assert result.returncode == 0, result.stderr
    share_empty = sum(1 for r in rows.values() if r == "") / len(rows)
    assert result.stdout.strip().splitlines()[-1] == f"score: {share_empty:.4f}"
    assert "ignored): 1" in result.stdout


@pytest.mark.parametrize("damage", ["missing", "malformed", "absent"])
def test_score_cli_errors_are_one_line(tmp_path, synthetic_dir, damage):
    truth = synthetic_dir / "train.csv"
    rows = list(read_rles(truth).items())
    sub = tmp_path / "sub.csv"
    if damage == "missing":
        write_csv(sub, rows[1:])
    elif damage == "malformed":
        write_csv(sub, [(rows[0][0], "1 2 x")] + rows[1:])
    result = run_module("salt.score", str(truth), str(sub))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sub.csv" in lines[0], result.stderr



def damaged_table(tmp_path, name, damage):
    """`name`.csv in tmp_path, a header with no rows or a directory; returns it and its error."""
    path = tmp_path / f"{name}.csv"
    if damage == "directory":
        path.mkdir()
        return path, f"error: {path}: is a directory, expected a CSV file"
    write_csv(path, [])
    return path, f"error: {path}: no rows"


@pytest.mark.parametrize("bad", ["truth", "submission"])
@pytest.mark.parametrize("damage", ["header only", "directory"])
def test_score_refuses_an_empty_table_or_a_directory(tmp_path, capsys, bad, damage):
    from salt import score

    good = write_csv(tmp_path / "good.csv", [(IDS[0], "1 2")])
    path, message = damaged_table(tmp_path, bad, damage)
    with pytest.raises(SystemExit) as stopped:
        score.main([str(path), str(good)] if bad == "truth" else [str(good), str(path)])
    assert stopped.value.code == message  # exit_on_error: printed as one line, exit status 1
    assert capsys.readouterr().out == ""  # no "score: nan"


def test_score_cli_on_a_header_only_truth_is_one_line(tmp_path):
    path, message = damaged_table(tmp_path, "truth", "header only")
    result = run_module("salt.score", str(path), str(write_csv(tmp_path / "sub.csv", [(IDS[0], "")])))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [message] and result.stdout == ""
