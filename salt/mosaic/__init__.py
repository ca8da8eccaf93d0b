"""Mosaic assembly: putting the 101×101 tiles back into the seismic sections they were cut from.

    python -m salt.mosaic data.dir=DIR out=mosaics.csv         # the table id,x,y,mosaic_id
    python -m salt.mosaic.render data.dir=DIR render.mosaics=mosaics.csv render.out=DIR  # PNGs

Pipeline (one module each):

- `edges`: histogram-matched tiles → standardised predictions of each seam, per side;
  constant and near-constant tiles, and flat sides, are left out.
- `matching`: brute-force nearest neighbours of every side (best, second best, both ways)
  → candidate links.
- `evidence`: when a join is believable (a lone link must be strong; a join that makes
  several seams is voted on by them).
- `assembly`: greedy union of links into components on an integer grid, refusing
  contradictions, collisions and joins the evidence does not carry.
- `dataset`: a data directory → the cached mosaic table; `quality`: scores against a
  known layout and mask continuity; `render`: PNG pictures.
"""

from salt.mosaic.assembly import Layout
from salt.mosaic.build import Assembly, AssemblySettings, assemble_tiles
from salt.mosaic.dataset import assemble_dataset, mosaic_table, mosaics_for, read_mosaics, write_mosaics

__all__ = [
    "Assembly",
    "AssemblySettings",
    "Layout",
    "assemble_dataset",
    "assemble_tiles",
    "mosaic_table",
    "mosaics_for",
    "read_mosaics",
    "write_mosaics",
]
