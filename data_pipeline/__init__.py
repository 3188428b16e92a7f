"""Datasets for lipjax: TFDS builders and preprocessing.

Importing this package registers the builders with TFDS: `synthetic_lips` (our own
corpus) and `grid`, `lrw`, `ldc` (real corpora from a manual download).
"""

from data_pipeline import grid, ldc, lrw, synthetic_lips  # noqa: F401  (registers builders)
