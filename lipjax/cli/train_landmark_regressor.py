"""Trains the lip-landmark regressor (lipjax.eval.landmark_regressor) on synthetic_lips and
prints its report; saves it to WORKDIR/landmark_regressor with its report beside it.

python -m lipjax.cli.train_landmark_regressor --data_dir=DIR --config=small --workdir=OUT
"""

from __future__ import annotations

import json

from absl import app, flags

from lipjax.eval import landmark_regressor

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("data_dir", None, "TFDS data dir with synthetic_lips built.")
    flags.DEFINE_string("config", "small", "synthetic_lips config name.")
    flags.DEFINE_string("workdir", None, "Where to save the regressor.")
    flags.DEFINE_integer("steps", 3000, "Training steps.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 64, "Frames per step.", lower_bound=1)
    flags.DEFINE_float("learning_rate", 2e-3, "Adam's peak learning rate.")
    flags.DEFINE_integer("seed", 0, "Random seed.")
    flags.mark_flags_as_required(["data_dir", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    _, report = landmark_regressor.train_regressor(
        FLAGS.data_dir, config_name=FLAGS.config, steps=FLAGS.steps,
        batch_size=FLAGS.batch_size, seed=FLAGS.seed, workdir=FLAGS.workdir,
        learning_rate=FLAGS.learning_rate,
    )  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
