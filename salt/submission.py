"""Submission files (`id,rle_mask`): writing, reading and the checks the competition applies."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from salt import rle
from salt.data.tables import read_table
from salt.errors import RLEError, SubmissionError
from salt.files import atomic_file
from salt.geometry import TILE_SIZE

COLUMNS = ("id", "rle_mask")


def read_rles(path: str | os.PathLike, *, error: type[SubmissionError] = SubmissionError) -> dict[str, str]:
    """Read an `id,rle_mask` CSV (a submission, or `train.csv` as truth) into {id: rle}.

    Every RLE is checked (sorted, disjoint runs inside a 101x101 tile); the first problem
    raises `error` naming the file, line and id.
    """
    rles = {}
    for line, (tile_id, encoded) in read_table(path, COLUMNS, error=error):
        try:
            rle.parse(encoded)
        except RLEError as exc:
            raise error(f"{path}, line {line} (id {tile_id}): malformed rle_mask: {exc}") from None
        rles[tile_id] = encoded
    return rles


def decode_rles(rles: dict[str, str], ids: Sequence[str]) -> np.ndarray:
    """(N, 101, 101) bool masks of `ids`, in that order."""
    masks = np.zeros((len(ids), TILE_SIZE, TILE_SIZE), dtype=bool)
    for i, tile_id in enumerate(ids):
        masks[i] = rle.decode(rles[tile_id])
    return masks


def check_ids(rles: dict[str, str], expected_ids: Iterable[str], path: str | os.PathLike) -> None:
    """Raise `SubmissionError` unless `rles` holds every expected id and no other."""
    expected = set(expected_ids)
    missing = [tile_id for tile_id in expected if tile_id not in rles]
    extra = [tile_id for tile_id in rles if tile_id not in expected]
    if missing:
        raise SubmissionError(f"{path}: {len(missing)} expected id(s) missing, e.g. {sorted(missing)[0]}")
    if extra:
        raise SubmissionError(f"{path}: {len(extra)} unexpected id(s), e.g. {extra[0]}")


def validate_submission(path: str | os.PathLike, expected_ids: Iterable[str]) -> dict[str, str]:
    """Check a submission file as the competition would; returns its {id: rle}.

    Every expected id exactly once, no other id, every RLE well formed.
    """
    rles = read_rles(path)
    check_ids(rles, expected_ids, path)
    return rles


def write_submission(path: str | os.PathLike, ids: Sequence[str], masks: np.ndarray) -> Path:
    """Write (N, 101, 101) masks of `ids` as a submission, validated before it appears at `path`."""
    masks = np.asarray(masks)
    if masks.shape != (len(ids), TILE_SIZE, TILE_SIZE):
        raise ValueError(f"expected masks of shape ({len(ids)}, {TILE_SIZE}, {TILE_SIZE}), got {masks.shape}")
    if len(set(ids)) != len(ids):
        raise SubmissionError(f"{path}: duplicate ids in the predictions")
    path = Path(path)
    with atomic_file(path) as tmp:
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows((tile_id, rle.encode(mask)) for tile_id, mask in zip(ids, masks))
        validate_submission(tmp, ids)
    return path
