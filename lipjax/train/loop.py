"""The resumable training loop of the pretraining stages (FlowNet, perceptual autoencoder).

`train_resumable` runs a jitted step over batches that are a function of the step number,
saving params, optimiser state and the loss log every `checkpoint_every` steps, so that a
killed stage resumes from its last checkpoint and sees the same data.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

from lipjax import checkpointing

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingResult:
    state: Any
    log: list[dict[str, float]]  # {"step", "loss"}: mean loss of each logging window
    wall_s: float  # training time, summed over resumed runs
    data_ms_per_batch: float  # batch preparation time (overlapped with the steps)
    resumed_from: int  # 0, or the step a progress checkpoint let us start from


def train_resumable(
    *,
    state: Any,
    train_step: Callable[[Any, tuple[np.ndarray, ...]], tuple[Any, jax.Array]],
    make_batch: Callable[[int], tuple[np.ndarray, ...]],
    num_steps: int,
    progress_dir: str | os.PathLike,
    description: str,
    log_every: int,
    checkpoint_every: int,
) -> TrainingResult:
    """Run `num_steps` of `state, loss = train_step(state, make_batch(step))` with a tqdm bar.

    `make_batch` must be a function of the step alone (seeded by it), so that a resumed run
    sees the same batches; it runs one step ahead in a thread, overlapping the jitted step.
    Every `checkpoint_every` steps the state and the loss log are saved in `progress_dir`;
    a later call with the same `progress_dir` resumes from there. The caller removes the
    directory once the stage's result is saved.
    """
    progress_dir = Path(progress_dir).resolve()
    # One process pretrains (lipjax.train runs it on process 0 of a multi-host job); orbax
    # creates no directory for a manager of one process.
    progress_dir.mkdir(parents=True, exist_ok=True)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=1, create=False, multiprocessing_options=checkpointing.this_process_only()
    )
    manager = ocp.CheckpointManager(progress_dir, options=options)
    start, log, wall_before = 0, [], 0.0
    latest = manager.latest_step()
    if latest is not None and latest <= num_steps:
        restored = manager.restore(
            latest,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(
                    jax.tree.map(checkpointing.abstract_on_first_local_device, state)
                ),
                log=ocp.args.JsonRestore(),
            ),
        )
        state, start = restored["state"], latest
        log, wall_before = restored["log"]["log"], restored["log"]["wall_s"]
        logger.info("%s: resuming from step %d (%s)", description, start, progress_dir)

    data_seconds = []

    def timed_batch(step: int) -> tuple[np.ndarray, ...]:
        begin = time.perf_counter()
        batch = make_batch(step)
        data_seconds.append(time.perf_counter() - begin)
        return batch

    started = time.perf_counter()
    window: list[jax.Array] = []
    bar = tqdm(total=num_steps, initial=start, desc=description, unit="step")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as prefetcher:
            upcoming = prefetcher.submit(timed_batch, start) if start < num_steps else None
            for step in range(start, num_steps):
                batch = upcoming.result()
                if step + 1 < num_steps:
                    upcoming = prefetcher.submit(timed_batch, step + 1)
                state, loss = train_step(state, batch)
                window.append(loss)
                done = step + 1
                if done % log_every == 0 or done == num_steps:
                    mean_loss = float(np.mean(jax.device_get(window)))
                    window = []
                    log.append({"step": done, "loss": mean_loss})
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    logger.info("%s step %d: loss %.5f", description, done, mean_loss)
                bar.update()
                if done % checkpoint_every == 0 and done < num_steps:
                    wall = wall_before + time.perf_counter() - started
                    progress = {"log": list(log), "wall_s": wall}
                    manager.save(
                        done,
                        args=ocp.args.Composite(
                            state=ocp.args.StandardSave(state), log=ocp.args.JsonSave(progress)
                        ),
                    )
        jax.block_until_ready(state)
    finally:  # also when interrupted: let a progress checkpoint being written complete
        bar.close()
        manager.wait_until_finished()
        manager.close()
    return TrainingResult(
        state=state,
        log=log,
        wall_s=wall_before + time.perf_counter() - started,
        data_ms_per_batch=1000 * float(np.mean(data_seconds)) if data_seconds else 0.0,
        resumed_from=start,
    )


def loss_summary(log: list[dict[str, float]]) -> dict[str, float]:
    """First and last logged losses of a training log."""
    if not log:
        return {}
    return {"loss_first": log[0]["loss"], "loss_last": log[-1]["loss"]}


def uint8_to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 frames -> float32 in [-1, 1]."""
    return frames.astype(np.float32) / 127.5 - 1.0
