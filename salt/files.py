"""Atomic outputs: a file or directory appears complete under its final name, or not at all.

Every writer of the suite goes through `atomic_file` or `atomic_directory`: the data is
written under a temporary name in the destination's own folder (so the final rename never
crosses filesystems and never turns into a copy), flushed to disk, then renamed. A crash
or a full disk leaves the previous file or nothing, never a truncated one.

Temporary names carry the writer's host and process id
(``.<name>.tmp-<host>-<pid>-<random>[suffix]``): the next writer of the same path removes
what a killed process left behind, and never the temporaries of a process still writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from salt.errors import SaltError

# Another host's temporaries cannot be checked for a live process; they go once this old.
FOREIGN_TEMPORARY_AGE_S = 24 * 3600


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it is fsync'd and renamed onto `path` when the
    block succeeds.

    The temporary name keeps the suffix, so writers that pick a format from it (OpenCV,
    NumPy, matplotlib) write the right one. On failure the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it a normal file's mode
    try:
        yield Path(tmp)
        _fsync(Path(tmp))
        os.replace(tmp, path)
        _fsync(path.parent)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if error.filename == tmp:
            # Name the file the user knows, not its temporary.
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` when the block succeeds
    (its files fsync'd first).

    An existing non-empty `path` is a `SaltError` unless `overwrite` is set, in which case
    it is replaced only after the new directory is complete.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SaltError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise SaltError(f"{path}: directory exists and is not empty (set overwrite=true to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temporary_prefix(path)))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        for root, _, names in os.walk(tmp):
            for name in names:
                _fsync(Path(root) / name)
            _fsync(Path(root))
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temporary_prefix(path)))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
        _fsync(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temporaries(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove what killed writers left in `folder` (of `name` only, when given); returns
    the paths removed.

    A temporary is stale when its process is gone (this host) or when it is older than
    `FOREIGN_TEMPORARY_AGE_S` (another host's). A live process's temporaries stay.
    """
    owner = re.escape(name) if name is not None else ".+"
    pattern = re.compile(rf"\.{owner}\.tmp-(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+(\.\w+)?")
    host = socket.gethostname()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if match["host"] == host:
                stale = not _process_alive(int(match["pid"]))
            else:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > FOREIGN_TEMPORARY_AGE_S
        except OSError:
            continue
        if not stale:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to disk. A file that cannot be
    flushed (a full disk) raises; a directory that cannot is let pass (some platforms
    and filesystems do not sync directories)."""
    directory = path.is_dir()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def write_png(path: str | os.PathLike, array) -> None:
    """Encode `array` as PNG in memory and write it with Python: `cv2.imwrite` reports a
    failed write (a full disk) only by returning False; this raises OSError with its errno."""
    import cv2

    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise SaltError(f"{path}: OpenCV could not encode the image ({array.dtype} {array.shape})")
    Path(path).write_bytes(data.tobytes())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_figure(fig, path: str | os.PathLike, title: str = "") -> Path:
    """Title, lay out and atomically save a matplotlib figure as PNG, then free it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)
