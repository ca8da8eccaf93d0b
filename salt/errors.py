"""User-facing errors: one line that names the thing and what is wrong with it."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator


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
    constructor errors in an InstantiationException), and reports a full disk (ENOSPC,
    EDQUOT from any writer) in one line too: every writer is atomic, so nothing was left
    half-written, and the remedy is the same whatever was being written.
    """
    try:
        yield
    except Exception as error:
        cause = cause_in_chain(error, lambda e: isinstance(e, SaltError) or _disk_full(e))
        if cause is None:
            raise
        if _disk_full(cause):
            where = f"{cause.filename}: " if getattr(cause, "filename", None) else ""
            raise SystemExit(f"error: {where}no space left on device (nothing was left half-written; free space and run again)") from None
        raise SystemExit(f"error: {cause}") from None


def cause_in_chain(error: BaseException, match: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception of `error`'s chain (itself, then what it was raised from or
    during) that `match` accepts, or None: finds a `SaltError` that Hydra's instantiate
    wrapped in an InstantiationException."""
    cause: BaseException | None = error
    while cause is not None and not match(cause):
        cause = cause.__cause__ or cause.__context__
    return cause


def _disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
