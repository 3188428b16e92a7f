"""LDC2009V01 (TFDS name `ldc`), from a manual download."""

from data_pipeline.ldc.ldc import Ldc, LdcConfig

__all__ = ["Ldc", "LdcConfig"]
