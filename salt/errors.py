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


class GeometryError(SaltError):
    """A padded, crop or tile size that does not fit the tile geometry (101 → padded → crop)."""


class CacheError(SaltError):
    """A cache directory that cannot be used (inside the data directory, not writable)."""


class ModelConfigError(SaltError):
    """A network that cannot be built or fed as configured: unknown encoder, unreachable
    pretrained weights, a decoder option out of range, an input size the strides do not divide."""


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn a `SaltError` into one line on stderr and exit status 1, instead of a traceback.

    Also finds a `SaltError` wrapped by another exception (Hydra's instantiate wraps
    constructor errors in an InstantiationException).
    """
    try:
        yield
    except Exception as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, SaltError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise SystemExit(f"error: {cause}") from None
