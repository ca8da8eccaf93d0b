"""python -m salt.mosaic data.dir=DIR out=mosaics.csv [assembly.max_ratio=0.65 ...]

Assemble every tile of the data directory (train and test) into mosaics and write the
table ``id,x,y,mosaic_id`` of the mosaics of at least two tiles (x = column, y = row
growing downwards). The table is cached under ``paths.cache_dir``; ``cache=false``
rebuilds it without reading or writing the cache.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from salt.data.prepared import PaddingSettings  # noqa: F401  registers data/padding/schema (mosaic.yaml composes data: tgs)
from salt.errors import exit_on_error
from salt.mosaic.dataset import table_from_config, write_mosaics


@hydra.main(version_base="1.3", config_path="../conf", config_name="mosaic")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        table = table_from_config(cfg)
        out = write_mosaics(table, cfg.out)
        print(f"wrote {len(table):,} tiles in {table.mosaic_id.nunique():,} mosaics to {out}")


if __name__ == "__main__":
    main()
