"""The synthetic audiovisual corpus (TFDS name `synthetic_lips`)."""

from data_pipeline.synthetic_lips.synthetic_lips import CONFIGS, SyntheticLips

__all__ = ["CONFIGS", "SyntheticLips"]
