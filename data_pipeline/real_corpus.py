"""What the TFDS builders of the real corpora (grid, lrw, ldc) share.

Each builder lists its corpus's files in `manual_dir` (a manual download; see its
MANUAL_DOWNLOAD_INSTRUCTIONS), splits them as Table 1 of the paper, and preprocesses every
utterance with `data_pipeline.preprocess`. A build writes, beside the array_record files,
`build_report/<split>.jsonl` (one line per utterance: ok or skipped, why, landmark
source; `preprocess.read_report(builder.data_dir)` sums it up).

Two engines run the same per-utterance function:
- local: a pool of processes on this machine (`num_workers`, default one per core);
- Apache Beam, when the build is given a Beam runner or pipeline options, e.g.
  `python -m data_pipeline.build grid --manual_dir=DIR
  --beam_pipeline_options="runner=DirectRunner,direct_num_workers=16,direct_running_mode=multi_processing"`
  (or a Dataflow / Flink / Spark runner for a cluster; `tfds build` takes the same
  options where TensorFlow is installed).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import pathlib
import zlib
from collections.abc import Iterable, Sequence

import tensorflow_datasets as tfds
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import writer as writer_lib

from data_pipeline import log_mel_stats, preprocess
from lipjax.data import features, workers

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(eq=False)
class RealCorpusConfig(tfds.core.BuilderConfig):
    """A split rule and the preprocessing settings of a real corpus."""

    landmarks: str = "auto"  # "auto" (sidecar if present, else dlib), "dlib", "sidecar"
    detect_every: int = 10  # dlib: frames between face detections
    smoothing_window: int = 5  # frames in the moving average of the crop box
    max_length_difference: float = 0.2  # seconds audio and video may differ
    min_frames: int = 1  # shorter videos are skipped, counted in the report

    def preprocess_options(self) -> preprocess.PreprocessOptions:
        options = preprocess.PreprocessOptions(
            landmarks=self.landmarks,
            detect_every=self.detect_every,
            smoothing_window=self.smoothing_window,
            max_length_difference=self.max_length_difference,
            min_frames=self.min_frames,
        )
        options.validate()
        return options


def stable_fraction(name: str) -> float:
    """A number in [0, 1) fixed by `name` alone (CRC-32): for splits that do not depend
    on file order, machine or Python's hash seed."""
    return zlib.crc32(name.encode()) / 2**32


def hold_out(names: Sequence[str], fraction: float) -> set[str]:
    """Names (sentences, items) to hold out for validation: in the order of their
    `stable_fraction`, until they cover `fraction` of the entries of `names` (which may
    repeat: one per utterance), and at least one name when there are two or more."""
    counts = collections.Counter(names)
    held, covered = set(), 0
    for name in sorted(counts, key=lambda n: (stable_fraction(n), n))[: len(counts) - 1]:
        if held and covered >= fraction * len(names):
            break
        held.add(name)
        covered += counts[name]
    return held


def files_by_suffix(root: pathlib.Path, suffixes: Iterable[str]) -> list[pathlib.Path]:
    """Every file under `root` whose suffix (lower case) is one of `suffixes`, sorted."""
    wanted = {s.lower() for s in suffixes}
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in wanted and p.is_file())


class UncompressedArrayRecordWriter(writer_lib.ExampleWriter):
    """TFDS's example writer, but array_record without compression: TFDS's default
    compresses each record, and an utterance (about 1.2 MB of raw arrays, which shrink
    by only 7%) then takes 1.7 ms to read instead of 0.45 ms. Readers need no option:
    the file header says how it is stored."""

    def write(self, path, examples):
        if self.file_format != file_adapters.FileFormat.ARRAY_RECORD:
            return super().write(path, examples)
        from array_record.python import array_record_module

        writer = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1,uncompressed")
        for _, serialized in examples:
            writer.write(serialized)
        writer.close()
        return None


def _with_source(utterance: preprocess.Utterance, manual_dir: pathlib.Path) -> preprocess.Utterance:
    """The utterance with its video's path relative to `manual_dir` as its `source`."""
    video = pathlib.Path(utterance.video)
    try:
        source = video.relative_to(manual_dir).as_posix()
    except ValueError:  # not under manual_dir: the file name
        source = video.name
    return dataclasses.replace(utterance, source=source)


def _process(args) -> preprocess.Outcome:
    utterance, options = args
    return preprocess.process(utterance, options)


class RealCorpusBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the grid, lrw and ldc builders: subclasses define `list_splits`."""

    # One version for the three real corpora: they share features and preprocessing.
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {  # noqa: RUF012 (TFDS API)
        "1.0.0": "First release.",
        "1.1.0": (
            "crop_box and source_video: each crop's box in its source frame and the video's "
            "path in manual_dir, for the paper's LMD on crops pasted back (lipjax.eval.real_lmd)."
        ),
    }
    DESCRIPTION = ""
    HOMEPAGE = ""

    def __init__(self, *, num_workers: int | None = None, **kwargs):
        """Like any TFDS builder, plus `num_workers` processes for a local build
        (default: one per core)."""
        if num_workers is not None and num_workers < 1:
            raise ValueError(f"num_workers: expected a positive integer, got {num_workers}")
        self._num_workers = num_workers or os.cpu_count() or 1
        self._use_beam = False
        kwargs.setdefault("file_format", "array_record")  # random access, no TensorFlow
        super().__init__(**kwargs)
        self.builder_config.preprocess_options()  # fail early on bad settings

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            features=features.real_corpus_features(),
            supervised_keys=None,
            homepage=self.HOMEPAGE,
            metadata=log_mel_stats.new_metadata(),
        )

    def list_splits(self, manual_dir: pathlib.Path) -> dict[str, list[preprocess.Utterance]]:
        """The utterances of each split found in `manual_dir`."""
        raise NotImplementedError

    def _example_writer(self) -> writer_lib.ExampleWriter:
        return UncompressedArrayRecordWriter(file_format=self.info.file_format)

    def _download_and_prepare(self, dl_manager, download_config):
        # A Beam runner or Beam options given to the build select the Beam engine.
        self._use_beam = bool(download_config.beam_runner or download_config.beam_options)
        return super()._download_and_prepare(dl_manager, download_config)

    def _split_generators(self, dl_manager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        if not manual_dir.is_dir():
            raise FileNotFoundError(
                f"manual_dir {manual_dir} does not exist. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        splits = {
            split: [_with_source(u, manual_dir) for u in utterances]
            for split, utterances in self.list_splits(manual_dir).items()
        }
        for split, utterances in list(splits.items()):
            logger.info("%s %s: %d utterances", self.name, split, len(utterances))
            if not utterances:
                logger.warning("%s: no utterance for split %s in %s", self.name, split, manual_dir)
                del splits[split]
        return {split: self._generate_examples(split, items) for split, items in splits.items()}

    def _generate_examples(self, split: str, utterances: Sequence[preprocess.Utterance]):
        options = self.builder_config.preprocess_options()
        report = preprocess.report_path(self.data_dir, split)
        if self._use_beam:
            return _beam_transform(list(utterances), options, report)
        # (With Beam the statistics are computed when the dataset is first read:
        # lipjax.data.pipeline.dataset_log_mel_stats.)
        return log_mel_stats.recording_train_statistics(
            self, split, self._generate_locally(split, utterances, options, report)
        )

    def _generate_locally(self, split, utterances, options, report):
        work = [(utterance, options) for utterance in utterances]
        records = []
        # Fresh worker processes that never re-import the caller's __main__ (see
        # lipjax.data.workers), and hold no copy of this process's JAX or dlib state.
        num_workers = 1 if len(work) < 8 else self._num_workers
        for outcome in workers.ordered_map(_process, work, num_workers):
            records.append(outcome.record())
            if outcome.example is not None:
                yield outcome.utterance.key, outcome.example
        preprocess.write_report(report, records)
        summary = preprocess.summarize(records)
        if summary["skipped"]:
            logger.warning(
                "%s %s: skipped %d of %d utterances %s; the list is in %s", self.name, split,
                summary["skipped"], len(records), summary["skipped_by_reason"], report,
            )  # fmt: skip
        if records and not summary["examples"]:
            first = summary["skipped_files"][0]
            raise ValueError(
                f"{self.name} {split}: every one of {len(records)} utterances was skipped "
                f"{summary['skipped_by_reason']}; first: {first[1]} (report: {report})"
            )


def _beam_transform(utterances, options, report: pathlib.Path):
    """The Beam version of the local loop: examples out, report lines to `report`."""
    import apache_beam as beam

    class PreprocessUtterances(beam.PTransform):
        def expand(self, pipeline):
            outcomes = (
                pipeline
                | "List" >> beam.Create(utterances)
                | "Spread" >> beam.Reshuffle()
                | "Preprocess" >> beam.Map(preprocess.process, options=options)
            )
            report.parent.mkdir(parents=True, exist_ok=True)
            _ = (
                outcomes
                | "Record" >> beam.Map(lambda outcome: json.dumps(outcome.record()))
                | "Report" >> beam.io.WriteToText(str(report), shard_name_template="", num_shards=1)
            )
            return (
                outcomes
                | "Kept" >> beam.Filter(lambda outcome: outcome.example is not None)
                | "Keyed" >> beam.Map(lambda outcome: (outcome.utterance.key, outcome.example))
            )

    return PreprocessUtterances()
