"""A trained run carried between machines in a few small files, and rebuilt where it lands.

A machine that trains but cannot keep its disk (a rented GPU) hands back only a few files of
limited size. `export` writes a run's best weights in half precision, split into parts of
at most `max_mib` MiB, plus `run.tar` with the resolved config, the metrics and the curves
and a manifest of the parts' checksums. `rebuild` puts them together into a run directory
that `predict.py` takes like any other (weights back in float32, `data.dir` pointed at the
local copy of the data).

    python -m salt.training.transfer export outputs/speedrun/resnet34/fold_0 OUT [--max-mib 16]
    python -m salt.training.transfer rebuild OUT outputs/speedrun/resnet34/fold_0 --data-dir ../shared/tgs-salt
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import torch
from omegaconf import OmegaConf, open_dict

from salt import rundir
from salt.errors import SaltError, exit_on_error
from salt.files import atomic_directory, atomic_file
from salt.training.checkpoints import NET_PREFIX, network_state, read_checkpoint

FORMAT = 1
PART = "weights.fp16.{:02d}"
BUNDLE = "run.tar"
# Files of the run dir that travel in run.tar, when present.
RUN_FILES = (rundir.CONFIG, rundir.VALIDATION_IDS, str(rundir.METRICS), rundir.CURVES)


def export(run_dir: str | os.PathLike, out: str | os.PathLike, *, max_mib: float = 16.0, checkpoint: str = "best") -> list[Path]:
    """Write the run's weights (fp16 parts) and `run.tar` into `out`; returns the files written."""
    run_dir, out = Path(run_dir), Path(out)
    source = rundir.checkpoint_path(run_dir, checkpoint)
    if not (run_dir / rundir.CONFIG).is_file():
        raise SaltError(f"run {run_dir}: no config.yaml (not a run directory train.py wrote)")
    checkpoint_data = read_checkpoint(source)  # a CheckpointError naming the file when unusable
    weights = network_state(source, checkpoint_data)
    half = {key: value.half() if value.is_floating_point() else value for key, value in weights.items()}
    buffer = io.BytesIO()
    torch.save(half, buffer)
    payload = buffer.getvalue()
    size = int(max_mib * 2**20)
    if size < 1:
        raise SaltError(f"max_mib={max_mib}: must be positive")
    chunks = [payload[start : start + size] for start in range(0, len(payload), size)]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, chunk in enumerate(chunks):
        with atomic_file(out / PART.format(number)) as tmp:
            tmp.write_bytes(chunk)
        written.append(out / PART.format(number))
    manifest = {
        "format": FORMAT,
        "parts": [{"name": PART.format(n), "bytes": len(c), "sha256": hashlib.sha256(c).hexdigest()} for n, c in enumerate(chunks)],
        "checkpoint": checkpoint,
        "epoch": int(checkpoint_data.get("epoch", -1)),
        "global_step": int(checkpoint_data.get("global_step", -1)),
        "inputs": checkpoint_data.get("inputs"),
    }
    with atomic_file(out / BUNDLE) as tmp:
        with tarfile.open(tmp, "w") as tar:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for name in RUN_FILES:
                if (run_dir / name).is_file():
                    tar.add(run_dir / name, arcname=name)
    written.append(out / BUNDLE)
    return written


def rebuild(exported: str | os.PathLike, run_dir: str | os.PathLike, *, data_dir: str | None = None, overwrite: bool = False) -> Path:
    """A run directory (config.yaml, checkpoints/best.ckpt, metrics) from `export`'s files."""
    exported, run_dir = Path(exported), Path(run_dir)
    bundle = exported / BUNDLE
    if not bundle.is_file():
        raise SaltError(f"{exported}: no {BUNDLE} (the directory `salt.training.transfer export` wrote)")
    try:
        with tarfile.open(bundle) as tar:
            members = {member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()}
    except (tarfile.TarError, OSError, EOFError) as error:
        raise SaltError(f"{bundle}: cannot be read ({type(error).__name__}: {error})") from None
    if "manifest.json" not in members or "config.yaml" not in members:
        raise SaltError(f"{bundle}: holds no manifest.json or config.yaml")
    manifest = json.loads(members["manifest.json"])
    payload = bytearray()
    for part in manifest["parts"]:
        path = exported / part["name"]
        if not path.is_file():
            raise SaltError(f"{path}: weight part missing ({len(manifest['parts'])} parts listed in {bundle})")
        chunk = path.read_bytes()
        if hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise SaltError(f"{path}: damaged or from another export (checksum differs from {bundle})")
        payload += chunk
    half = torch.load(io.BytesIO(bytes(payload)), map_location="cpu", weights_only=True)
    state = {NET_PREFIX + key: value.float() if value.is_floating_point() else value for key, value in half.items()}
    config = OmegaConf.create(members["config.yaml"].decode())
    if data_dir is not None:
        with open_dict(config):
            config.data.dir = str(data_dir)
    with atomic_directory(run_dir, overwrite=overwrite) as root:
        (root / rundir.CHECKPOINTS).mkdir()
        torch.save(
            {
                "state_dict": state,
                "epoch": manifest["epoch"],
                "global_step": manifest["global_step"],
                "inputs": manifest.get("inputs"),
                "rebuilt_from": str(exported),
            },
            rundir.checkpoint_path(root, manifest["checkpoint"]),
        )
        (root / rundir.CONFIG).write_text(OmegaConf.to_yaml(config))
        for name, data in members.items():
            if name not in ("manifest.json", "config.yaml"):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
    return run_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salt.training.transfer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="run dir -> fp16 weight parts + run.tar")
    exporting.add_argument("run_dir")
    exporting.add_argument("out")
    exporting.add_argument("--max-mib", type=float, default=16.0, help="largest part, MiB")
    exporting.add_argument("--checkpoint", default="best", choices=["best", "last"])
    rebuilding = commands.add_parser("rebuild", help="exported files -> run dir that predict.py takes")
    rebuilding.add_argument("exported")
    rebuilding.add_argument("run_dir")
    rebuilding.add_argument("--data-dir", help="the data here (replaces the config's data.dir)")
    rebuilding.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    with exit_on_error():
        if args.command == "export":
            files = export(args.run_dir, args.out, max_mib=args.max_mib, checkpoint=args.checkpoint)
            print(f"exported {args.run_dir}: " + ", ".join(f"{f.name} ({f.stat().st_size / 2**20:.1f} MiB)" for f in files))
        else:
            print(f"rebuilt {rebuild(args.exported, args.run_dir, data_dir=args.data_dir, overwrite=args.overwrite)}")


if __name__ == "__main__":
    main()
