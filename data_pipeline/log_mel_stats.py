"""The train split's log-mel statistics, computed while a builder writes it and stored with
the dataset (dataset_info's metadata.json), so that each corpus is normalised with its own
(lipjax.data.audio.LogMelStats; the trainer reads them with
lipjax.data.pipeline.dataset_log_mel_stats)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import tensorflow_datasets as tfds

from lipjax.data import audio


def new_metadata() -> tfds.core.MetadataDict:
    """The `metadata` of a builder's DatasetInfo: saved with the dataset when it is built."""
    return tfds.core.MetadataDict()


def recording_train_statistics(
    builder: tfds.core.GeneratorBasedBuilder, split: str, examples: Iterable[tuple[Any, dict]]
) -> Iterator[tuple[Any, dict]]:
    """`examples` (key, example) unchanged; for the train split, once the last has been
    written, the mean and standard deviation of their `log_mel` go into the builder's
    metadata (TFDS writes it after every split)."""
    if split != "train":
        yield from examples
        return
    accumulator = audio.LogMelStatsAccumulator()
    for key, example in examples:
        accumulator.add(example["log_mel"])
        yield key, example
    builder.info.metadata[audio.LOG_MEL_STATS_METADATA_KEY] = accumulator.metadata()
