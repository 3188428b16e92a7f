"""The GRID corpus (TFDS name `grid`), from a manual download."""

from data_pipeline.grid.grid import Grid, GridConfig

__all__ = ["Grid", "GridConfig"]
