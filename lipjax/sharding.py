"""One device mesh with a `data` axis: data parallelism over every device of every host.

Parameters and optimiser state are replicated; batches are split along their first axis.
Multi-host runs call `initialize_distributed()` first (jax.distributed), then every process
builds the same mesh over all global devices.
"""

from __future__ import annotations

import os

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """Joins a multi-host job when the launcher set JAX's coordinator variables.

    With `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` (or a cluster
    JAX detects by itself: SLURM, Cloud TPU, ...), this calls `jax.distributed.initialize`;
    on a single host it does nothing.
    """
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or os.environ.get("SLURM_JOB_ID"):
        jax.distributed.initialize()


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named `data` over the first `num_devices` devices (default: all)."""
    devices = jax.devices()
    count = num_devices or len(devices)
    if count > len(devices):
        raise ValueError(f"num_devices: asked for {count}, only {len(devices)} are available")
    # Auto axes: XLA propagates shardings through the model (Explicit axes, make_mesh's
    # default, would make every reshape of a batch-sharded tensor spell out its sharding).
    return jax.make_mesh(
        (count,), (DATA_AXIS,), devices=devices[:count], axis_types=(AxisType.Auto,)
    )


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Split the leading (batch) axis over the `data` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(global_batch_size: int, mesh: Mesh) -> None:
    """Raises ValueError unless the batch splits evenly over the mesh and the processes."""
    devices = mesh.devices.size
    if global_batch_size % devices:
        raise ValueError(
            f"batch_size: {global_batch_size} does not split over {devices} devices; "
            f"use a multiple of {devices}"
        )
    if global_batch_size % jax.process_count():
        raise ValueError(
            f"batch_size: {global_batch_size} does not split over {jax.process_count()} processes"
        )
