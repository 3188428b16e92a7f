"""Entry point: parses flags and runs `train.train_and_evaluate(config, workdir)`.

python -m lipjax.main --config=experiments/synthetic.py --workdir=runs/synthetic
python -m lipjax.main --config=experiments/grid.py:smoke --workdir=/tmp/grid_smoke
"""

from __future__ import annotations

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from lipjax import sharding, train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
config_flags.DEFINE_config_file(
    "config", None, "An experiments/*.py file, optionally with ':variant'.", lock_config=True
)
flags.mark_flags_as_required(["config", "workdir"])
# Multi-host launches outside SLURM (see lipjax.sharding.initialize_distributed): all three,
# on every process, or none (then $JAX_COORDINATOR_ADDRESS, $JAX_NUM_PROCESSES and
# $JAX_PROCESS_ID are read; under SLURM JAX finds them itself).
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-host runs)")
flags.DEFINE_integer("num_processes", None, "number of processes of a multi-host run")
flags.DEFINE_integer("process_id", None, "this process's rank, 0..num_processes-1")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:  # orbax and grain log every save at INFO
        logging.set_verbosity(logging.WARNING)
    try:
        sharding.initialize_distributed(
            FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id
        )
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    logging.info("JAX process %d of %d, devices: %s", jax.process_index(),
                 jax.process_count(), jax.devices())  # fmt: skip
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)
