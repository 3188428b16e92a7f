"""LSE-D / LSE-C / offset of a built dataset's split under the lip-sync expert: the real
videos, static ones and ones with the audio shifted (lipjax.eval.lip_sync).

python -m lipjax.cli.score_lip_sync --dataset=synthetic_lips/small --split=test [--expert=DIR]
"""

from __future__ import annotations

import json
import pathlib

from absl import app, flags

from lipjax.data.pipeline import DEFAULT_DATASET
from lipjax.eval import lip_sync

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("dataset", DEFAULT_DATASET, "A built lipjax dataset, name/config.")
    flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's).")
    flags.DEFINE_string("split", "test", "Split to score.")
    flags.DEFINE_string("expert", None, "An expert's directory (default: the shipped expert).")
    flags.DEFINE_string("output", None, "Also write the scores here, as JSON.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    result = lip_sync.score_dataset(FLAGS.dataset, FLAGS.split, FLAGS.data_dir, FLAGS.expert)
    print(json.dumps(result, indent=2))
    if FLAGS.output:
        pathlib.Path(FLAGS.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    define_flags()
    app.run(main)
