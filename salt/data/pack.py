"""The labelled tiles in one compact file, and back into the competition layout.

A machine that gets a checkout of at most a few tens of MiB and no copy of the data (a
rented GPU, say) can still train: the 3,500 training tiles, masks and depths fit in about
25 MB as one compressed `.npz`, and `unpack` lays them out again exactly as the competition
published them, so every command reads them as it reads the real directory, and the folds
made there are the folds made here (they depend on ids and masks alone).

    python -m salt.data.pack pack ../shared/tgs-salt train_tiles.npz
    python -m salt.data.pack unpack train_tiles.npz /tmp/tgs-salt
"""

from __future__ import annotations

import argparse
import os
import zipfile
from pathlib import Path

import numpy as np

from salt import rle
from salt.data.tiles import TileSet, load_split
from salt.errors import DataError, exit_on_error
from salt.files import atomic_directory, atomic_file, write_png
from salt.geometry import TILE_SIZE

FORMAT = 1
KEYS = ("format", "ids", "images", "masks", "depths")


def pack(data_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the training split of `data_dir` to `out` (.npz): uint8 images, bit-packed masks."""
    tiles = load_split(data_dir, "train")
    with atomic_file(out) as tmp:
        np.savez_compressed(
            tmp,
            format=np.int64(FORMAT),
            ids=tiles.ids.astype(str),
            images=tiles.images,
            masks=np.packbits(tiles.masks, axis=-1),
            depths=tiles.depths,
        )
    return Path(out)


def read_packed(path: str | os.PathLike) -> TileSet:
    """The tiles of a file `pack` wrote; a `DataError` naming the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: packed tiles not found")
    try:
        with np.load(path, allow_pickle=False) as packed:
            missing = [key for key in KEYS if key not in packed.files]
            if missing:
                raise DataError(f"{path}: not a packed tile file (no {missing[0]!r} array)")
            if int(packed["format"]) != FORMAT:
                raise DataError(f"{path}: packed tile format {int(packed['format'])}, this suite reads {FORMAT}")
            ids, images, depths = packed["ids"], packed["images"], packed["depths"]
            masks = np.unpackbits(packed["masks"], axis=-1, count=TILE_SIZE).astype(bool)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataError(f"{path}: cannot be read as packed tiles ({type(error).__name__}: {error})") from None
    count = len(ids)
    if images.shape != (count, TILE_SIZE, TILE_SIZE) or masks.shape != images.shape or depths.shape != (count,):
        raise DataError(f"{path}: arrays of inconsistent shapes (ids {count}, images {images.shape}, masks {masks.shape})")
    return TileSet(ids=ids, images=images, depths=depths, masks=masks)


def unpack(path: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Lay the packed tiles out in the competition layout at `out` (train split only)."""
    tiles = read_packed(path)
    with atomic_directory(out, overwrite=overwrite) as root:
        for sub in ("train/images", "train/masks"):
            (root / sub).mkdir(parents=True)
        for tile_id, image, mask in zip(tiles.ids.tolist(), tiles.images, tiles.masks):
            # As published: three identical 8-bit channels, 16-bit masks of 0 and 65535.
            write_png(root / "train" / "images" / f"{tile_id}.png", np.repeat(image[..., None], 3, axis=2))
            write_png(root / "train" / "masks" / f"{tile_id}.png", mask.astype(np.uint16) * 65535)
        rows = "".join(f"{tile_id},{rle.encode(mask)}\n" for tile_id, mask in zip(tiles.ids.tolist(), tiles.masks))
        (root / "train.csv").write_text("id,rle_mask\n" + rows)
        depths = "".join(f"{tile_id},{int(z)}\n" for tile_id, z in zip(tiles.ids.tolist(), tiles.depths))
        (root / "depths.csv").write_text("id,z\n" + depths)
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salt.data.pack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="competition-layout dir -> .npz of the training tiles")
    packing.add_argument("data_dir")
    packing.add_argument("out")
    unpacking = commands.add_parser("unpack", help=".npz -> competition-layout dir (train split)")
    unpacking.add_argument("packed")
    unpacking.add_argument("out")
    unpacking.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    with exit_on_error():
        if args.command == "pack":
            out = pack(args.data_dir, args.out)
            print(f"packed {len(read_packed(out).ids):,} training tiles into {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        else:
            out = unpack(args.packed, args.out, overwrite=args.overwrite)
            print(f"unpacked into {out}")


if __name__ == "__main__":
    main()
