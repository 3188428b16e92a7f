"""Lip Reading in the Wild (TFDS name `lrw`), from a manual download."""

from data_pipeline.lrw.lrw import Lrw, LrwConfig

__all__ = ["Lrw", "LrwConfig"]
