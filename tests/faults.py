"""Fault injection for the test suite: a command run with a kill -9 planted in one function.

    python tests/faults.py --kill-on torch:save --call 2 -- train.py KEY=VALUE ...
    python tests/faults.py --kill-on numpy:save --call 3 --after -- -m salt.prepare KEY=VALUE ...

The function (``module:attribute[.attribute]``, looked up at call time by its callers) is
wrapped in this process before the command starts; its Nth call sends SIGKILL to the
process itself, before the call runs (or, with ``--after``, once it returns). Nothing gets
to clean up, as with a real kill, an out-of-memory kill or a power cut.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib
import json
import os
import runpy
import signal
import sys
from collections import Counter
from pathlib import Path


def plant_kill(target: str, call: int, *, after: bool = False) -> None:
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == call and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls == call and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


# --- what the fault-injection tests record, for the session's summary line (conftest.py) ---

LEDGER: list[tuple[str, bool, int]] = []  # (kind of fault, recovered, half-written files)


def record(kind: str, recovered: bool, half_written: int) -> None:
    LEDGER.append((kind, recovered, half_written))


def summary() -> str | None:
    """"fault injection: N faults (kill -9: a, ...), R recovered, H half-written files"."""
    if not LEDGER:
        return None
    kinds = Counter(kind for kind, _, _ in LEDGER)
    recovered = sum(ok for _, ok, _ in LEDGER)
    half = sum(count for _, _, count in LEDGER)
    detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))
    return f"fault injection: {len(LEDGER)} faults injected ({detail}); {recovered} recovered; {half} half-written files"


def temporaries(root: Path) -> list[Path]:
    """The suite's temporaries under `root` (``.<name>.tmp-<host>-<pid>-…``)."""
    return sorted(path for path in Path(root).rglob(".*.tmp-*"))


def half_written(root: Path) -> list[Path]:
    """Files under their final names below `root` that cannot be read whole: checkpoints
    that do not load, CSV files with a torn row, YAML/JSON that does not parse, PNGs that
    do not decode, arrays shorter than their header says. Temporaries are not counted."""
    import cv2
    import numpy as np
    import torch
    import yaml

    damaged = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file() or any(part.startswith(".") and ".tmp-" in part for part in path.parts):
            continue
        try:
            if path.suffix == ".ckpt":
                torch.load(path, map_location="cpu", weights_only=True)
            elif path.suffix == ".csv":
                text = path.read_text()
                rows = list(csv.reader(text.splitlines()))
                if text and not text.endswith("\n") or any(len(row) != len(rows[0]) for row in rows):
                    raise ValueError("torn row")
            elif path.suffix in (".yaml", ".yml"):
                yaml.safe_load(path.read_text())
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".png":
                if cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED) is None:
                    raise ValueError("undecodable")
            elif path.suffix == ".npy":
                array = np.load(path, mmap_mode="r")
                if path.stat().st_size != array.offset + array.nbytes:
                    raise ValueError("short array")
        except Exception:  # noqa: BLE001 - any failure to read it whole means damage
            damaged.append(path)
    return damaged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-on", required=True, help="module:attribute, e.g. torch:save")
    parser.add_argument("--call", type=int, required=True, help="kill at this call (1 = the first)")
    parser.add_argument("--after", action="store_true", help="kill when the call returns, not when it starts")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- SCRIPT ARGS... or -- -m MODULE ARGS...")
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    plant_kill(options.kill_on, options.call, after=options.after)
    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        sys.path.insert(0, os.path.dirname(os.path.abspath(command[0])))
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    main()
