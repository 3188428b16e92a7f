"""Input pipeline throughput from array_record: training clips per second on 2 cores.

    python benchmarks/pipeline_throughput.py [--data_dir DIR] [--copies 10] [--batches 40]

A clip is one training window (16 frames of 64 x 64 lip crops, 64 x 128 log-mel, an
identity frame, landmarks), as `lipjax.data.pipeline.create_train_iterator` yields it.
The data is a `grid` build (array_record) of GRID-layout files: the synthetic tiny corpus
exported at full length (2 to 3 s per utterance, like GRID's 3 s) and copied `copies`
times under new speaker names, built through the real preprocessing path. The process is
pinned to 2 cores.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import time

import tensorflow_datasets as tfds
from absl import app, flags

from data_pipeline.grid import Grid
from data_pipeline.synthetic_lips import CONFIGS, export
from lipjax.data import pipeline


def build(data_dir: pathlib.Path, copies: int) -> Grid:
    """The `grid` build of `copies` copies of the exported tiny corpus (cached)."""
    builder = Grid(data_dir=data_dir, num_workers=2)
    if builder.is_prepared():
        return builder
    with tempfile.TemporaryDirectory() as tmp:
        exported = pathlib.Path(tmp) / "export"
        export.export(CONFIGS["tiny"], exported, num_workers=2)
        manual = pathlib.Path(tmp) / "manual"
        for copy in range(copies):
            for speaker in sorted(exported.glob("s*")):
                number = int(speaker.name[1:]) + 10 * copy
                shutil.copytree(speaker, manual / f"s{number}")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
        )
    return builder


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("data_dir", "/tmp/lipjax_bench_tfds", "TFDS data dir (the build is cached)")
    flags.DEFINE_integer("copies", 10, "copies of the exported tiny corpus", lower_bound=1)
    flags.DEFINE_integer("batches", 40, "batches timed per reader", lower_bound=1)
    flags.DEFINE_integer("batch_size", 24, "clips per batch", lower_bound=1)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    args = FLAGS
    os.sched_setaffinity(0, {0, 1})
    builder = build(pathlib.Path(args.data_dir), args.copies)
    index = pipeline.window_index("grid", "train", args.data_dir, cache_dir=args.data_dir)
    print(f"grid train: {builder.info.splits['train'].num_examples} utterances, "
          f"{index.num_windows} windows; batch {args.batch_size}; cores "
          f"{sorted(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| reader | clips/s |")
    print("| --- | --- |")
    for threads, workers in ((0, 0), (1, 0), (2, 0), (0, 2)):
        iterator = pipeline.create_train_iterator(
            "grid", "train", args.data_dir, global_batch_size=args.batch_size, seed=0,
            cache_dir=args.data_dir, num_threads=threads, worker_count=workers,
            num_data_devices=1,
        )  # fmt: skip
        for _ in range(5):  # warm up (worker start, prefetch)
            next(iterator)
        start = time.perf_counter()
        for _ in range(args.batches):
            next(iterator)
        seconds = time.perf_counter() - start
        label = f"{workers} worker processes" if workers else f"{threads} read-ahead threads"
        print(f"| {label} | **{args.batches * args.batch_size / seconds:.0f}** |")
        del iterator


if __name__ == "__main__":
    define_flags()
    app.run(main)
