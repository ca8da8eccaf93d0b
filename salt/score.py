"""Score a submission against true masks with the competition metric.

    python -m salt.score TRUTH_CSV SUBMISSION_CSV

TRUTH_CSV is an `id,rle_mask` table such as `train.csv`. Every truth id must be in the
submission; submission ids without truth (the rest of the test set) are ignored. Prints
the score overall, on empty and salt tiles and per coverage class; the last line reads
`score: 0.xxxx`.
"""

from __future__ import annotations

import argparse
import sys

from salt.errors import SubmissionError, exit_on_error
from salt.metric import score_report
from salt.submission import decode_rles, read_rles


def score_files(truth_csv: str, submission_csv: str) -> dict:
    """Read both files, check the ids, and return `salt.metric.score_report` plus `ignored` ids."""
    truth = read_rles(truth_csv)
    submission = read_rles(submission_csv)
    # The metric of no tiles is nan; a header-only file is a truncated or wrong file.
    for path, rows in ((truth_csv, truth), (submission_csv, submission)):
        if not rows:
            raise SubmissionError(f"{path}: no rows")
    missing = [tile_id for tile_id in truth if tile_id not in submission]
    if missing:
        raise SubmissionError(
            f"{submission_csv}: {len(missing)} id(s) of {truth_csv} missing, e.g. {missing[0]}"
        )
    ids = list(truth)
    report = score_report(decode_rles(submission, ids), decode_rles(truth, ids))
    report["ignored"] = len(submission) - len(ids)
    return report


def format_report(report: dict) -> str:
    lines = [f"tiles: {report['tiles']}"]
    if report.get("ignored"):
        lines.append(f"submission ids without truth (ignored): {report['ignored']}")
    lines.append(f"{'subset':<16}{'tiles':>7}{'score':>9}")
    rows = [("empty", report["empty"]), ("salt", report["salt"])]
    rows += [(f"coverage {10 * (c - 1)}-{10 * c}%", report["coverage"][c]) for c in range(1, 11)]
    for name, part in rows:
        value = f"{part['score']:.4f}" if part["tiles"] else "-"
        lines.append(f"{name:<16}{part['tiles']:>7}{value:>9}")
    lines.append(f"score: {report['score']:.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salt.score", description=__doc__.split("\n\n")[0])
    parser.add_argument("truth_csv", help="id,rle_mask table of true masks (e.g. train.csv)")
    parser.add_argument("submission_csv", help="id,rle_mask submission to score")
    args = parser.parse_args(argv)
    with exit_on_error():
        print(format_report(score_files(args.truth_csv, args.submission_csv)))


if __name__ == "__main__":
    sys.exit(main())
