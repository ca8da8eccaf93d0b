"""Build (or load) every cached array a training run needs: padded tiles and masks, and folds.

    python -m salt.prepare data.dir=DIR [folds=mosaic] [data.padding.mode=reflect data.padding.size=160 ...]

The padded tiles of each split (`salt.data.prepared`), then the folds of the configured
kind (mosaic folds assemble the mosaics). A second run finds the cache entries and only
checks them. A training run on a new data directory builds what it needs by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from salt.data.prepared import PaddingSettings, PreparedTiles, log_step, prepare_tiles
from salt.errors import exit_on_error
from salt.folds import FoldSettings, folds_for


def prepare_from_config(cfg: DictConfig, *, log: Callable[[str], None] = print) -> dict[str, PreparedTiles]:
    """`prepare_tiles` with ``cfg.data`` (dir, padding, histogram_match) and ``cfg.paths``."""
    splits = cfg.get("splits")
    return prepare_tiles(
        cfg.data.dir,
        cfg.paths.cache_dir,
        splits=None if splits is None else list(splits),
        padding=PaddingSettings.from_config(cfg.data.padding),
        histogram_match=bool(cfg.data.get("histogram_match", False)),
        verify=bool(cfg.get("verify", True)),
        log=log,
    )


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    with exit_on_error():
        prepared = prepare_from_config(cfg)
        if "train" in prepared:
            # The folds of the configured kind; mosaic folds assemble (and cache) the mosaics.
            settings = FoldSettings.from_config(cfg.folds)
            with log_step(print, f"{settings.kind} folds (k={settings.k})"):
                folds_for(cfg.data.dir, cfg.paths.cache_dir, settings, verify=bool(cfg.verify), log=print)
    counts = ", ".join(f"{split} {len(tiles):,} tiles" for split, tiles in prepared.items())
    print(f"prepared {counts} in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
