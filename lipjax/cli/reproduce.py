"""Reruns the paper's Tables 2 and 3 on our corpus and writes `experiments/RESULTS.md`.

python -m lipjax.cli.reproduce --workdir=runs/tables --steps=1000
"""

from __future__ import annotations

from absl import app, flags, logging

from lipjax.eval.reproduce import EXPERIMENTS, EXPERIMENTS_DIR, RECORDS_DIR, reproduce

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Where every experiment's run and evaluation go.")
flags.DEFINE_integer("steps", 1000, "Training steps of every experiment.")
flags.DEFINE_string("variant", "synthetic", "Config variant of every experiments/ file.")
flags.DEFINE_list("only", [], "Experiments to run (default: all of Tables 2 and 3).")
flags.DEFINE_string("split", "test", "Split the tables are computed on.")
flags.DEFINE_string("data_dir", "", "TFDS data dir ('' = the configs' default).")
flags.DEFINE_string(
    "pretrained", "", "A folder with pretrained flownet/ and perceptual/ (default WORKDIR/pretrain)"
)
flags.DEFINE_string("results", str(EXPERIMENTS_DIR / "RESULTS.md"), "The markdown written.")
flags.DEFINE_bool("sync_expert", True, "Also report LSE-D / LSE-C of the shipped sync expert.")
flags.DEFINE_string(
    "records", str(RECORDS_DIR), "Where finished experiments' records are kept ('' = workdir only)."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    try:
        reproduce(
            FLAGS.workdir,
            steps=FLAGS.steps,
            names=tuple(FLAGS.only) or EXPERIMENTS,
            variant=FLAGS.variant,
            split=FLAGS.split,
            data_dir=FLAGS.data_dir,
            pretrained=FLAGS.pretrained,
            results=FLAGS.results,
            sync=FLAGS.sync_expert,
            records_dir=FLAGS.records or None,
        )
    except (ValueError, FileNotFoundError) as error:
        raise app.UsageError(str(error)) from None


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    app.run(main)
