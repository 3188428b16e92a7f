"""One device mesh with a `data` axis: data parallelism over every device of every host.

Parameters and optimiser state are replicated; batches are split along their first axis.
Multi-host runs call `initialize_distributed()` first (jax.distributed), then every process
builds the same mesh over all global devices.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


# The three settings of a multi-host launch, each from an argument (lipjax.main's flag of
# the same name) or else from this environment variable.
DISTRIBUTED_SETTINGS = {
    # host:port of process 0, which runs the coordinator service; every process names it
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    # how many processes join the job (all hosts together)
    "num_processes": "JAX_NUM_PROCESSES",
    # this process's rank, 0 .. num_processes - 1 (0 is the coordinator)
    "process_id": "JAX_PROCESS_ID",
}
# Launchers whose environment JAX reads by itself (processes, rank, coordinator).
CLUSTER_VARIABLES = ("SLURM_JOB_ID",)


def distributed_settings(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ: dict[str, str] | None = None,
) -> dict | None:
    """The arguments of `jax.distributed.initialize` for this process, or None on one host.

    Each setting comes from its argument, else from its environment variable
    (`DISTRIBUTED_SETTINGS`). Under SLURM any of them may be left out: JAX reads the rest
    from the job's environment. Elsewhere it is all three or none; a partial set raises
    ValueError naming what is missing, as do a process id outside 0..num_processes - 1 and
    an address that is not host:port.
    """
    environ = os.environ if environ is None else environ
    given = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    sources = {name: "argument" for name, value in given.items() if value is not None}
    for name, variable in DISTRIBUTED_SETTINGS.items():
        if given[name] is None and environ.get(variable, "").strip():
            given[name] = environ[variable].strip()
            sources[name] = variable
    for name in ("num_processes", "process_id"):
        if isinstance(given[name], str):
            try:
                given[name] = int(given[name])
            except ValueError:
                raise ValueError(
                    f"{name}: expected an integer, got {given[name]!r} from {sources[name]}"
                ) from None
    settings = {name: value for name, value in given.items() if value is not None}
    cluster = next((v for v in CLUSTER_VARIABLES if environ.get(v)), None)
    if not settings:
        return {} if cluster else None
    missing = [name for name in DISTRIBUTED_SETTINGS if name not in settings]
    if missing and not cluster:
        wanted = ", ".join(f"{n} (--{n} or ${DISTRIBUTED_SETTINGS[n]})" for n in missing)
        have = ", ".join(f"{name}={settings[name]} (from {sources[name]})" for name in settings)
        raise ValueError(
            "a multi-host launch outside SLURM needs coordinator_address, num_processes and "
            f"process_id; missing: {wanted}; given: {have}"
        )
    if "num_processes" in settings and settings["num_processes"] < 1:
        raise ValueError(f"num_processes: expected >= 1, got {settings['num_processes']}")
    if "process_id" in settings and not (
        0 <= settings["process_id"] < settings.get("num_processes", float("inf"))
    ):
        raise ValueError(
            f"process_id: expected 0..num_processes - 1, got {settings['process_id']} "
            f"with num_processes={settings.get('num_processes')}"
        )
    address = settings.get("coordinator_address")
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"coordinator_address: expected host:port, got {address!r}")
    return settings


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Joins a multi-host job (`jax.distributed.initialize`); returns whether it did.

    Under SLURM, JAX finds the coordinator, the process count and this process's id by
    itself. Elsewhere give all three, as arguments (lipjax.main: `--coordinator_address`,
    `--num_processes`, `--process_id`) or as `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`
    and `JAX_PROCESS_ID`; with none of them this is a single-host run and nothing happens.
    Raises ValueError naming the missing settings when only some are given.
    """
    settings = distributed_settings(coordinator_address, num_processes, process_id)
    if settings is None:
        return False
    jax.distributed.initialize(**settings)
    return True


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


def replicate(tree: Any, mesh: Mesh) -> Any:
    """`tree` as arrays with a full copy on every device of `mesh`, from values equal on
    every process (host data, or arrays on this process's devices: a multi-host job cannot
    `device_put` those onto other processes' devices)."""
    target = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, target)

    def put(leaf):
        host = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(host.shape, target, lambda index: host[index])

    return jax.tree.map(put, tree)


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
