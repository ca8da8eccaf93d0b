"""User-facing errors: one line that names the thing and what is wrong with it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class SaltError(Exception):
    """Bad input the user can fix. The message names the file, row or option and the problem."""


class DataError(SaltError):
    """A data directory, image, mask or CSV that is missing or malformed."""


class RLEError(SaltError):
    """A run-length encoding that breaks the competition's format."""


class SubmissionError(SaltError):
    """A submission file that would be rejected by the competition."""


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn a `SaltError` into one line on stderr and exit status 1, instead of a traceback."""
    try:
        yield
    except SaltError as error:
        raise SystemExit(f"error: {error}") from None
