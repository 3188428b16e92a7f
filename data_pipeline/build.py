"""Builds a real corpus (grid, lrw, ldc) from its manual download, locally or on Beam.

    python -m data_pipeline.build grid --manual_dir=/data/grid [--data_dir=DIR]
    python -m data_pipeline.build grid --manual_dir=/data/grid \\
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=16,direct_running_mode=multi_processing"

The same as `tfds build NAME --imports=data_pipeline --manual_dir=DIR`, whose command line
needs TensorFlow (lipjax does not). Writes array_record; prints the split sizes and the
build report (skipped utterances by reason).
"""

from __future__ import annotations

import json
import time

import tensorflow_datasets as tfds
from absl import app, flags

from data_pipeline import preprocess
from data_pipeline.grid import Grid
from data_pipeline.ldc import Ldc
from data_pipeline.lrw import Lrw

BUILDERS = {"grid": Grid, "lrw": Lrw, "ldc": Ldc}


def beam_options(text: str):
    """Beam PipelineOptions from "key=value,key=value" (tfds build's format)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = [f"--{item.strip()}" for item in text.split(",") if item.strip()]
    return PipelineOptions(options)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("manual_dir", None, "the corpus as downloaded")
    flags.DEFINE_string("data_dir", None, "TFDS data dir")
    flags.DEFINE_string("config", None, "builder config (default: default)")
    flags.DEFINE_integer("num_workers", None, "local processes", lower_bound=1)
    flags.DEFINE_string("beam_pipeline_options", "", 'build on Beam, e.g. "runner=DirectRunner"')
    flags.mark_flag_as_required("manual_dir")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in BUILDERS:
        raise app.UsageError(f"expected one corpus name, one of {sorted(BUILDERS)}; got {argv[1:]}")
    name = argv[1]
    builder = BUILDERS[name](
        config=FLAGS.config, data_dir=FLAGS.data_dir, num_workers=FLAGS.num_workers
    )
    download = {"manual_dir": FLAGS.manual_dir}
    if FLAGS.beam_pipeline_options:
        download["beam_options"] = beam_options(FLAGS.beam_pipeline_options)
    start = time.perf_counter()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(**download))
    print(f"Built {builder.info.full_name} in {builder.data_dir} "
          f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
    for split, info in builder.info.splits.items():
        print(f"  {split}: {info.num_examples} utterances")
    report = preprocess.read_report(builder.data_dir)
    for split, summary in report.items():
        summary = {k: v for k, v in summary.items() if k != "skipped_files"}
        print(f"  report {split}: {json.dumps(summary)}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
