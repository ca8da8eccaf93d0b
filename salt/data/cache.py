"""A disk cache of derived arrays (padded tiles, histograms), keyed by data and parameters.

An entry is a directory ``<root>/<name>/<key>/`` holding one ``.npy`` file per array and a
``manifest.json`` that records the parameters the key was made from and each array's
dtype, shape and CRC-32. Entries are written to a temporary directory and renamed into
place, so a reader sees a complete entry or none. Arrays come back as read-only memory
maps: a second run costs a checksum pass over the files, not a rebuild, and DataLoader
workers share the pages instead of copying them.

The data's identity is a fingerprint (`fingerprint_files`): the content of the tables
named directly (ids, depths, RLE masks: a few MB, hashed in milliseconds, so an edit that
keeps a table's size and time is still seen), and the names, sizes and modification times
of the files inside folders (reading 22,000 PNGs takes ~10 s, listing them ~0.2 s). An
entry that fails any check (missing file, truncated array, checksum, manifest of other
parameters) is rebuilt, with a `CorruptCacheWarning`. A store killed half-way leaves a
temporary folder that the next store of that cache removes (`salt.files`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from salt.errors import CacheError
from salt.files import atomic_directory, remove_stale_temporaries

# Bump when the meaning of cached arrays changes (a new padding algorithm, a new loader),
# so old entries are not mistaken for current ones.
CACHE_FORMAT = 1
MANIFEST = "manifest.json"


class CorruptCacheWarning(UserWarning):
    """A cache entry failed its checks and is being rebuilt."""


# Files named directly and at most this large are fingerprinted by content.
CONTENT_HASH_MAX_BYTES = 64 * 2**20


def fingerprint_files(root: str | os.PathLike, names: Iterable[str]) -> str:
    """Identity of ``root/name`` for each name (a file, or a directory taken recursively).

    A file named directly is hashed by its content (up to `CONTENT_HASH_MAX_BYTES`, else
    by size and modification time); the files inside a directory by path relative to
    ``root``, size and modification time (ns). A missing name is hashed as missing.
    Changing, adding or removing a file changes the fingerprint.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for name in sorted(names):
        path = root / name
        if path.is_file() and path.stat().st_size <= CONTENT_HASH_MAX_BYTES:
            try:
                content = path.read_bytes()
            except OSError:
                pass  # unreadable: hashed by its stat below; the loader names it in one line
            else:
                digest.update(f"{name}\0content\0".encode())
                digest.update(hashlib.sha256(content).digest())
                continue
        for relative, size, mtime in _file_stats(root, name):
            digest.update(f"{relative}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def cache_key(params: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters (key order does not matter)."""
    return hashlib.sha256(_canonical(params).encode()).hexdigest()[:24]


class ArrayCache:
    """Named entries of numpy arrays under ``root``.

    Args:
        root: the cache directory (created on first write).
        forbid_inside: directories the cache must not live in (the data directory):
            a root inside one is a `CacheError`.
    """

    def __init__(self, root: str | os.PathLike, *, forbid_inside: Iterable[str | os.PathLike] = ()) -> None:
        self.root = Path(root)
        resolved = self.root.resolve()
        for directory in forbid_inside:
            directory = Path(directory).resolve()
            if resolved == directory or directory in resolved.parents:
                raise CacheError(
                    f"cache dir {self.root}: lies inside the data dir {directory}; point paths.cache_dir elsewhere"
                )

    def entry_dir(self, name: str, params: Mapping[str, Any]) -> Path:
        """Where the entry for ``name`` and ``params`` lives."""
        return self.root / name / cache_key(params)

    def load(self, name: str, params: Mapping[str, Any], *, verify: bool = True) -> dict[str, np.ndarray] | None:
        """The entry's arrays (read-only memory maps), or None when absent or corrupt.

        ``verify`` recomputes each array's CRC-32 (≈0.5 s per GB); without it only the
        manifest, dtypes, shapes and file sizes are checked.
        """
        entry = self.entry_dir(name, params)
        if not entry.exists():
            return None
        try:
            return _read_entry(entry, params, verify)
        except _Corrupt as problem:
            warnings.warn(f"cache entry {entry}: {problem}; rebuilding it", CorruptCacheWarning, stacklevel=2)
            return None

    def store(self, name: str, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Write ``arrays`` as the entry for ``name`` and ``params``; return them memory-mapped."""
        entry = self.entry_dir(name, params)
        manifest = {"format": CACHE_FORMAT, "params": json.loads(_canonical(params)), "arrays": {}}
        # What killed stores of any entry of this name left (a test split's is 1.6 GB).
        remove_stale_temporaries(self.root / name)
        try:
            with atomic_directory(entry, overwrite=True) as tmp:
                for key, array in arrays.items():
                    array = np.ascontiguousarray(array)
                    if array.dtype.hasobject:
                        raise TypeError(f"cache entry {name}: array {key!r} has object dtype; it cannot be memory-mapped")
                    np.save(tmp / f"{key}.npy", array, allow_pickle=False)
                    manifest["arrays"][key] = {"dtype": array.dtype.str, "shape": list(array.shape), "crc32": _crc32(array)}
                (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        except OSError as exc:
            raise CacheError(f"cache dir {self.root}: cannot write entry {name} ({exc})") from None
        return _read_entry(entry, params, verify=False)

    def get_or_build(
        self,
        name: str,
        params: Mapping[str, Any],
        build: Callable[[], Mapping[str, np.ndarray]],
        *,
        verify: bool = True,
    ) -> tuple[dict[str, np.ndarray], bool]:
        """The cached entry, building and storing it first when absent or corrupt.

        Returns the arrays and whether they came from the cache.
        """
        arrays = self.load(name, params, verify=verify)
        if arrays is not None:
            return arrays, True
        return self.store(name, params, build()), False


class _Corrupt(Exception):
    """Why an entry cannot be trusted."""


def _read_entry(entry: Path, params: Mapping[str, Any], verify: bool) -> dict[str, np.ndarray]:
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except FileNotFoundError:
        raise _Corrupt(f"no {MANIFEST}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Corrupt(f"unreadable {MANIFEST} ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        raise _Corrupt(f"{MANIFEST} is not of cache format {CACHE_FORMAT}")
    # Two parameter sets with one key would be a hash collision; a mismatch is far more
    # likely a hand-edited or damaged manifest, and either way the entry is not ours.
    if manifest.get("params") != json.loads(_canonical(params)):
        raise _Corrupt(f"{MANIFEST} records other parameters")
    arrays = {}
    for key, expected in (manifest.get("arrays") or {}).items():
        arrays[key] = _read_array(entry / f"{key}.npy", expected, verify)
    return arrays


def _read_array(path: Path, expected: Mapping[str, Any], verify: bool) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise _Corrupt(f"{path.name} is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _Corrupt(f"{path.name} is not a readable array ({exc})") from None
    if array.dtype.str != expected.get("dtype") or list(array.shape) != expected.get("shape"):
        raise _Corrupt(
            f"{path.name} holds {array.dtype.str} {list(array.shape)}, "
            f"the manifest says {expected.get('dtype')} {expected.get('shape')}"
        )
    # np.load maps a file that is too long without complaint; trailing bytes mean damage.
    if isinstance(array, np.memmap) and path.stat().st_size != array.offset + array.nbytes:
        raise _Corrupt(f"{path.name} has {path.stat().st_size} bytes, expected {array.offset + array.nbytes}")
    if verify and _crc32(array) != expected.get("crc32"):
        raise _Corrupt(f"{path.name} fails its checksum")
    # A plain ndarray view (the map stays open through .base): np.memmap's subclass
    # behaviour (0-d memmaps from reductions, flush on delete) is not wanted downstream.
    return array.view(np.ndarray)


def _crc32(array: np.ndarray) -> int:
    if array.size == 0:
        return 0
    # Viewed as bytes: the buffer protocol does not export every dtype (e.g. str arrays).
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _canonical(params: Mapping[str, Any]) -> str:
    try:
        return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cache parameters must be plain JSON values: {exc}") from None


def _file_stats(root: Path, name: str) -> Iterable[tuple[str, int, int]]:
    """(relative path, size, mtime ns) for root/name, recursively; one 'missing' row if absent."""
    path = root / name
    if path.is_file():
        stat = path.stat()
        yield name, stat.st_size, stat.st_mtime_ns
    elif path.is_dir():
        # os.scandir and plain string slicing: pathlib per file costs more than the stat
        # itself when a split holds tens of thousands of tiles.
        top = os.fspath(path)
        prefix = len(top) + 1  # scandir yields top + sep + name, and so on down
        stack = [top]
        rows = []
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError:
                continue  # an unreadable folder: the loader names it in one line
            for item in entries:
                if item.is_dir():
                    stack.append(item.path)
                    continue
                try:
                    stat = item.stat()
                    size, mtime = stat.st_size, stat.st_mtime_ns
                except OSError:
                    size = mtime = -1  # a broken link: likewise left for the loader to report
                relative = f"{name}/{item.path[prefix:]}".replace(os.sep, "/")
                rows.append((relative, size, mtime))
        yield from sorted(rows)
    else:
        yield name, -1, -1
