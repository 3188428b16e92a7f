"""The audio-visual offset study of the paper's Fig. 4 on a built dataset's split: the figure,
a JSON summary and a CSV line per video (lipjax.eval.offset_study).

python -m lipjax.cli.offset_study --dataset=synthetic_lips/small --split=train --output=DIR
"""

from __future__ import annotations

import json

from absl import app, flags

from lipjax.data.pipeline import DEFAULT_DATASET
from lipjax.eval import offset_study

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("dataset", DEFAULT_DATASET, "A built lipjax dataset, name/config.")
    flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's).")
    flags.DEFINE_string("split", "train", "Split to study.")
    flags.DEFINE_string("output", None, "Folder for the figure and tables.")
    flags.DEFINE_enum("visual", "opening", sorted(offset_study.VISUAL_MEASURES), "Lip series.")
    flags.DEFINE_enum(
        "acoustic", "envelope", sorted(offset_study.ACOUSTIC_MEASURES), "Audio series."
    )
    flags.DEFINE_integer("max_offset", offset_study.MAX_OFFSET, "Largest offset, frames.")
    flags.DEFINE_integer("limit", None, "First N utterances only (default: all).")
    flags.mark_flag_as_required("output")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    summary, files = offset_study.run(
        FLAGS.dataset, FLAGS.split, FLAGS.output, FLAGS.data_dir, visual=FLAGS.visual,
        acoustic=FLAGS.acoustic, max_offset=FLAGS.max_offset, limit=FLAGS.limit,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))
    print("wrote", ", ".join(str(f) for f in files))


if __name__ == "__main__":
    define_flags()
    app.run(main)
