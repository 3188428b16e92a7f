"""Exports a training run's generator as an inference-only weights folder.

python -m lipjax.cli.export_weights --checkpoint=runs/synthetic --output=my_weights
"""

from __future__ import annotations

import jax
from absl import app, flags

from lipjax.inference.weights import load_weights, save_weights


def main(argv):
    del argv
    weights = load_weights(flags.FLAGS.checkpoint)
    out = save_weights(weights, flags.FLAGS.output)
    count = sum(x.size for x in jax.tree.leaves(weights.params))
    print(f"{count:,} generator parameters from {weights.source} -> {out}")


if __name__ == "__main__":
    flags.DEFINE_string("checkpoint", None, "training run workdir or checkpoint folder")
    flags.DEFINE_string("output", None, "weights folder to write")
    flags.mark_flags_as_required(["checkpoint", "output"])
    app.run(main)
