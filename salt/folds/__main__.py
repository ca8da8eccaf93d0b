"""python -m salt.folds data.dir=DIR folds=mosaic|random out=folds.csv: write the fold table."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from salt.errors import exit_on_error
from salt.folds.table import FoldSettings, describe, folds_for, make_folds, write_folds


@hydra.main(version_base="1.3", config_path="../conf", config_name="make_folds")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        settings = FoldSettings.from_config(cfg.folds)
        if cfg.get("cache", True):
            table = folds_for(cfg.data.dir, cfg.paths.cache_dir, settings, verify=bool(cfg.get("verify", True)))
        else:
            table = make_folds(cfg.data.dir, settings)
        out = write_folds(table, cfg.out)
        print(describe(table).to_string(float_format=lambda v: f"{v:.3f}"))
        print(f"wrote {settings.kind} folds (k={settings.k}, seed={settings.seed}) of {len(table):,} train tiles to {out}")


if __name__ == "__main__":
    main()
