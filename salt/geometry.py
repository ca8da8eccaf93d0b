"""Tile geometry: the one place that knows the sizes a tile goes through."""

TILE_SIZE = 101  # side of a competition tile, pixels
