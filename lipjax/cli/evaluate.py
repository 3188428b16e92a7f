"""Evaluates a trained lip generator on a split: tables, per-speaker breakdown and plots.

python -m lipjax.cli.evaluate --checkpoint=runs/synthetic --split=test --workdir=runs/eval
"""

from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from lipjax.eval.report import config_from_json, find_run_config, markdown_table, run

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand: lipjax.main defines --config too)."""
    config_flags.DEFINE_config_file(
        "config", None, "An experiments/*.py file (default: the run's config.json).",
        lock_config=True,
    )  # fmt: skip
    flags.DEFINE_string("checkpoint", None, "A run's workdir, its best/ or checkpoints/, a step.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the newest in the folder).")
    flags.DEFINE_string("split", "test", "Split to evaluate.")
    flags.DEFINE_string("workdir", None, "Where the tables and plots go.")
    flags.DEFINE_string("sync_expert", "", "Sync expert directory; '' = shipped, 'none' = off.")
    flags.DEFINE_bool("cpbd", True, "Compute CPBD (about 2 ms a frame).")
    flags.DEFINE_integer("max_batches", 0, "Evaluate this many batches only (0 = all).")
    flags.DEFINE_integer("num_samples", 4, "Clips written as samples.")
    flags.DEFINE_string(
        "manual_dir", None, "Real corpora: the videos the dataset was built from, for LMD "
        "with dlib on crops pasted back (default: the config's manual_dir; '' = no LMD).",
    )  # fmt: skip
    flags.mark_flags_as_required(["checkpoint", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    config = FLAGS.config or config_from_json(find_run_config(FLAGS.checkpoint))
    summary = run(
        config,
        FLAGS.checkpoint,
        FLAGS.split,
        FLAGS.workdir,
        step=FLAGS.step,
        sync_expert=None if FLAGS.sync_expert == "none" else FLAGS.sync_expert,
        sharpness=FLAGS.cpbd,
        max_batches=FLAGS.max_batches,
        num_samples=FLAGS.num_samples,
        manual_dir=FLAGS.manual_dir,
    )
    print(markdown_table(summary["rows"]))
    print(f"{summary['num_clips']} clips; wrote {len(summary['files'])} files to {FLAGS.workdir}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
