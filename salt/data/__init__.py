"""Data layer: competition-layout directories, tables and tiles."""
