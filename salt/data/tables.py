"""CSV tables of the competition layout (`train.csv`, `depths.csv`, submissions)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from salt.errors import DataError


def read_table(path: str | Path, columns: tuple[str, ...], *, error: type[DataError] = DataError) -> list[tuple[int, list[str]]]:
    """Read a CSV whose header must be exactly `columns`.

    Returns `(line_number, fields)` per data row so callers can name the offending line.
    Raises `error` for a missing or unreadable file, a directory, a wrong header, a row
    with the wrong number of fields, or a duplicate value in the first column (the id).
    """
    path = Path(path)
    # os.path.isdir, not Path.is_dir: it answers False instead of raising when a parent
    # directory cannot be searched, so the open below reports that as "permission denied".
    if os.path.isdir(path):
        raise error(f"{path}: is a directory, expected a CSV file")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except OSError as exc:
        raise error(describe_os_error(path, exc)) from None
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


def describe_os_error(path: Path, exc: OSError, kind: str = "file") -> str:
    """One line saying why `path` (a `kind`: "file" or "directory") could not be opened.

    The OSError's own text ("[Errno 13] Permission denied: '...'") repeats the path and
    says nothing about a dangling symlink, which is the usual cause of "not found" for a
    file that a directory listing did show.
    """
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied"
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return f"{path}: broken symbolic link (target {os.readlink(path)} missing)"
        return f"{path}: {kind} not found"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a directory, expected a {kind}"
    return f"{path}: {exc.strerror or exc}"
