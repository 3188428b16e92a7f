"""What the processes of a multi-host job (`jax.distributed`) agree on, and how.

Every function here is a no-op or a local computation on one process, so single-host code
calls them unconditionally. With several processes each is a collective: every process
must call it, in the same order, or the job hangs.

- `run_on_primary`: one process (0) does a piece of work (pretraining, building the
  dataset) while the others wait at a barrier, then all continue with its result on the
  shared file system.
- `StopAgreement`: SIGTERM / SIGINT on any process stops all of them after the same step
  (JAX's preemption sync point; a per-process flag would let one process leave a
  collective the others are still in).
- `gather_rows`: the rows each process computed, concatenated in process order on every
  process (evaluation metrics of a sharded split).
"""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from absl import logging

# Long enough for the slowest work one process does for all (FlowNet and perceptual
# pretraining at paper sizes): hours, not the 5 minutes of orbax's default barrier.
PRIMARY_WORK_TIMEOUT_S = 24 * 3600
_barrier_count = itertools.count()


def is_primary() -> bool:
    """Whether this process writes what is written once (logs, samples, pretraining)."""
    return jax.process_index() == 0


def barrier(name: str, timeout_s: int = PRIMARY_WORK_TIMEOUT_S) -> None:
    """Waits until every process reaches the barrier `name` (unique per call site and
    run); raises when one has not after `timeout_s`, or has died."""
    if jax.process_count() == 1:
        return
    from orbax.checkpoint import multihost as orbax_multihost

    # Orbax's barrier over the coordination service, with an explicit timeout; the
    # process set makes it that barrier rather than a device collective.
    # A barrier's key is used once: the count keeps a second run in the same processes
    # (lipjax.eval.reproduce) apart, and is the same on every process (same calls, same order).
    key = f"lipjax_{name}_{next(_barrier_count)}"
    orbax_multihost.sync_global_processes(
        key, timeout=timeout_s, processes=set(range(jax.process_count()))
    )


def run_on_primary(name: str, work: Callable[[], Any], timeout_s: int = PRIMARY_WORK_TIMEOUT_S):
    """Runs `work()` on process 0 only while the others wait; returns its result on process
    0 and None elsewhere. What it writes must be on a file system every process reads."""
    result = work() if is_primary() else None
    barrier(name, timeout_s)
    return result


class StopAgreement:
    """Stops every process after the same training step when any one is asked to stop.

    One process: SIGTERM and SIGINT set a flag that `should_stop(step)` returns. Several
    processes: JAX's preemption service (started by `jax.distributed.initialize`) catches
    SIGTERM and tells every process; `should_stop(step)` is
    `multihost_utils.reached_preemption_sync_point(step)`, True on all processes at the same
    step. It must be called after every step, by every process, from the same start step.
    SIGINT (Ctrl-C) is turned into a SIGTERM to this process so that it takes the same path.
    `install()` sets the signal handlers, `uninstall()` puts the previous ones back.
    """

    def __init__(self):
        self.distributed = jax.process_count() > 1
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum, frame) -> None:
        del frame
        if self.distributed:  # hand Ctrl-C to JAX's preemption notifier (a SIGTERM handler)
            logging.warning("Signal %d: asking every process to save and stop.", signum)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        logging.warning("Signal %d: saving a checkpoint and stopping.", signum)
        self.requested = True

    def install(self) -> StopAgreement:
        # With several processes SIGTERM stays with JAX's preemption notifier.
        signals = (signal.SIGINT,) if self.distributed else (signal.SIGTERM, signal.SIGINT)
        self._previous = {s: signal.signal(s, self._on_signal) for s in signals}
        return self

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def should_stop(self, step: int) -> bool:
        """Whether to save at `step` and stop; the same answer on every process."""
        if not self.distributed:
            return self.requested
        from jax.experimental import multihost_utils

        self.requested = multihost_utils.reached_preemption_sync_point(step)
        return self.requested


def gather_rows(local: np.ndarray) -> np.ndarray:
    """Every process's `local` rows (axis 0; the other axes equal on all processes),
    concatenated in process order, on every process. Exact for any dtype: the rows travel
    as bytes (process_allgather would cast 64-bit values to 32 bits)."""
    local = np.ascontiguousarray(local)
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils

    counts = np.asarray(multihost_utils.process_allgather(np.int32(len(local)))).reshape(-1)
    row_bytes = local.dtype.itemsize * int(np.prod(local.shape[1:], dtype=np.int64))
    padded = np.zeros((int(counts.max()), row_bytes), np.uint8)
    padded[: len(local)] = local.view(np.uint8).reshape(len(local), row_bytes)
    every = np.asarray(multihost_utils.process_allgather(padded))  # (processes, rows, bytes)
    rows = np.concatenate([every[p, : counts[p]] for p in range(len(counts))])
    return rows.reshape(-1).view(local.dtype).reshape(-1, *local.shape[1:])
