"""Datasets for lipjax: TFDS builders and preprocessing.

Importing this package registers the builders with TFDS (`synthetic_lips`, ...).
"""

from data_pipeline import synthetic_lips  # noqa: F401  (registers the TFDS builder)
