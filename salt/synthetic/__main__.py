"""python -m salt.synthetic out=DIR [seed=0 sections=4 ...]: write a synthetic dataset."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from salt.errors import exit_on_error
from salt.synthetic import generate_tiles, write_dataset


@hydra.main(version_base="1.3", config_path="../conf", config_name="synthetic")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        tiles = generate_tiles(cfg.seed, cfg.sections, cfg.section_cols, cfg.section_rows)
        out = write_dataset(cfg.out, tiles, cfg.seed, cfg.train_fraction, cfg.overwrite)
        print(f"wrote {len(tiles)} tiles from {cfg.sections} sections to {out}")


if __name__ == "__main__":
    main()
