"""python -m salt.mosaic.render data.dir=DIR render.mosaics=mosaics.csv render.out=DIR
    [render.largest=5 | render.ids=[3,17]] [render.predictions=submission.csv] [render.scale=0.5]

Pictures of mosaics (`salt.mosaic.render`). Without ``render.mosaics`` the table is
assembled (or read from the cache) with the ``assembly`` settings, as ``python -m
salt.mosaic`` does.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from salt.data.prepared import PaddingSettings  # noqa: F401  registers data/padding/schema (mosaic.yaml composes data: tgs)
from salt.errors import SaltError, exit_on_error
from salt.mosaic.dataset import read_mosaics, table_from_config
from salt.mosaic.render import chosen_mosaics, load_tiles, render_mosaics
from salt.submission import decode_rles, read_rles


@hydra.main(version_base="1.3", config_path="../../conf", config_name="mosaic")
def main(cfg: DictConfig) -> None:
    with exit_on_error():
        options = cfg.render
        table = read_mosaics(options.mosaics) if options.mosaics else table_from_config(cfg)
        if table.empty:
            raise SaltError("no mosaics to draw: the table is empty")
        tiles = load_tiles(cfg.data.dir, histogram_match=bool(options.histogram_match))
        predictions = None
        if options.predictions:
            rles = read_rles(options.predictions)
            wanted = [tile_id for tile_id in table.id if tile_id in rles]
            predictions = dict(zip(wanted, decode_rles(rles, wanted)))
        mosaic_ids = chosen_mosaics(table, options.largest, options.ids)
        paths = render_mosaics(table, tiles, mosaic_ids, options.out, predictions=predictions, scale=float(options.scale))
        for path in paths:
            print(path)


if __name__ == "__main__":
    main()
