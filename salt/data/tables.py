"""CSV tables of the competition layout (`train.csv`, `depths.csv`, submissions)."""

from __future__ import annotations

import csv
from pathlib import Path

from salt.errors import DataError


def read_table(path: str | Path, columns: tuple[str, ...], *, error: type[DataError] = DataError) -> list[tuple[int, list[str]]]:
    """Read a CSV whose header must be exactly `columns`.

    Returns `(line_number, fields)` per data row so callers can name the offending line.
    Raises `error` for a missing file, a wrong header, a row with the wrong number of
    fields, or a duplicate value in the first column (the id).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise error(f"{path}: not a readable CSV file ({exc})") from None
    if not lines:
        raise error(f"{path}: empty file, expected a header {','.join(columns)}")
    header = [name.strip() for name in lines[0]]
    if tuple(header) != columns:
        raise error(f"{path}: header is {','.join(header)!r}, expected {','.join(columns)!r}")
    rows = []
    first_line = {}
    for number, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue  # a blank line, e.g. at the end
        if len(fields) != len(columns):
            raise error(f"{path}, line {number}: {len(fields)} fields, expected {len(columns)} ({','.join(columns)})")
        key = fields[0].strip()
        if key in first_line:
            raise error(f"{path}, line {number}: duplicate id {key!r} (first on line {first_line[key]})")
        first_line[key] = number
        rows.append((number, [field.strip() for field in fields]))
    return rows
