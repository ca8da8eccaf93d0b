"""What a mask shows at its edges: salt runs along a row or column, vertical boundaries,
where a salt body's top lies."""

from __future__ import annotations

import numpy as np


def salt_runs(line: np.ndarray) -> np.ndarray:
    """(L,) bool row or column → (K, 2) int64 [start, stop) of each salt run, in order."""
    padded = np.concatenate([[0], np.asarray(line, dtype=np.int8), [0]])
    return np.flatnonzero(np.diff(padded)).reshape(-1, 2)


def is_vertical(mask: np.ndarray) -> bool:
    """(101, 101) bool: some salt, and every boundary runs straight down (each column is
    all salt or all sediment)."""
    return bool(mask.any()) and bool((mask == mask[0]).all())


def salt_top_inside(mask: np.ndarray) -> bool:
    """(101, 101) bool: salt whose top lies inside the tile: less than half as much salt
    on the top row as on the bottom row (a "terminal" tile: the body starts here)."""
    return int(mask[0].sum()) * 2 < int(mask[-1].sum())


def single_run_to_end(line: np.ndarray, end: str) -> int | None:
    """Where the salt boundary crosses `line`, when the line holds exactly one salt run and
    it reaches the line's `end` ("stop": the last pixel, "start": the first) without
    covering the whole line; None otherwise.

    Returns the run's other end: its start for end="stop", its stop for end="start".
    """
    runs = salt_runs(line)
    if len(runs) != 1:
        return None
    start, stop = (int(v) for v in runs[0])
    if end == "stop" and stop == len(line) and start > 0:
        return start
    if end == "start" and start == 0 and stop < len(line):
        return stop
    return None
