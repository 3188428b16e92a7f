"""Builds a real corpus (grid, lrw, ldc) from its manual download, locally or on Beam.

    python -m data_pipeline.build grid --manual_dir=/data/grid [--data_dir=DIR]
    python -m data_pipeline.build grid --manual_dir=/data/grid \\
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=16,direct_running_mode=multi_processing"

The same as `tfds build NAME --imports=data_pipeline --manual_dir=DIR`, whose command line
needs TensorFlow (lipjax does not). Writes array_record; prints the split sizes and the
build report (skipped utterances by reason).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import tensorflow_datasets as tfds

from data_pipeline import preprocess
from data_pipeline.grid import Grid
from data_pipeline.ldc import Ldc
from data_pipeline.lrw import Lrw

BUILDERS = {"grid": Grid, "lrw": Lrw, "ldc": Ldc}


def beam_options(text: str):
    """Beam PipelineOptions from "key=value,key=value" (tfds build's format)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    flags = [f"--{item.strip()}" for item in text.split(",") if item.strip()]
    return PipelineOptions(flags)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.build")
    parser.add_argument("name", choices=sorted(BUILDERS))
    parser.add_argument("--manual_dir", required=True, help="the corpus as downloaded")
    parser.add_argument("--data_dir", default=None, help="TFDS data dir")
    parser.add_argument("--config", default=None, help="builder config (default: default)")
    parser.add_argument("--num_workers", type=int, default=None, help="local processes")
    parser.add_argument(
        "--beam_pipeline_options", default="", help='build on Beam, e.g. "runner=DirectRunner"'
    )
    args = parser.parse_args(argv)
    builder = BUILDERS[args.name](
        config=args.config, data_dir=args.data_dir, num_workers=args.num_workers
    )
    download = {"manual_dir": args.manual_dir}
    if args.beam_pipeline_options:
        download["beam_options"] = beam_options(args.beam_pipeline_options)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
