"""Trains the lip-sync expert (lipjax.eval.lip_sync) on a built dataset and prints its report.

python -m lipjax.cli.train_sync_expert --dataset=synthetic_lips/small --workdir=OUT [--steps=2500]
"""

from __future__ import annotations

import json

from absl import app, flags

from lipjax.data.pipeline import DEFAULT_DATASET
from lipjax.eval import lip_sync

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("dataset", DEFAULT_DATASET, "A built lipjax dataset, name/config.")
    flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's).")
    flags.DEFINE_string("workdir", None, "Where to save the expert.")
    flags.DEFINE_integer("steps", 2500, "Training steps.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 32, "Windows per step.", lower_bound=1)
    flags.DEFINE_float("learning_rate", 1e-3, "Adam's peak learning rate.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    report = lip_sync.train_on_dataset(
        FLAGS.dataset, FLAGS.data_dir, FLAGS.workdir, steps=FLAGS.steps,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
    )  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
