"""Every checkpoint lipjax writes, in one format (orbax).

- A training run (`Checkpointer`): the latest few and the best by a metric; each holds the
  train state (arrays, restored with their shardings) and the grain input iterator's
  position (one JSON file per process), so a resumed run continues with the next batch.
- A network on its own (`save_tree` / `restore_tree`): a pytree of arrays with JSON-able
  metadata, written and read by one process onto its first device: pretrained FlowNet and
  perceptual autoencoder, exported generator weights, the landmark regressor, the sync
  expert.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

LATEST = "checkpoints"
BEST = "best"


class Checkpointer:
    """`WORKDIR/checkpoints` (latest `keep`) and `WORKDIR/best` (lowest `best_metric`)."""

    def __init__(self, workdir: str | pathlib.Path, keep: int = 3, best_metric: str = "lmd"):
        workdir = pathlib.Path(workdir).absolute()
        self.best_metric = best_metric
        # The grain iterator's item is written by a synchronous handler on every process,
        # which does not wait for a directory that process 0 creates in the background:
        # with several processes the others then write into a folder not there yet.
        directories_first = ocp.AsyncOptions(create_directories_asynchronously=False)
        self.latest = ocp.CheckpointManager(
            workdir / LATEST,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, async_options=directories_first
            ),
            item_names=("state", "data"),
        )
        self.best = ocp.CheckpointManager(
            workdir / BEST,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1,
                best_fn=lambda metrics: metrics[best_metric],
                best_mode="min",
                create=True,
                async_options=directories_first,
            ),
            item_names=("state", "data"),
        )

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state: Any, iterator: Any, step: int | None = None) -> Any:
        """Restores the state of `step` (default: the latest) and moves `iterator` (a grain
        iterator built like the saved one) to the saved position."""
        from lipjax.data import pipeline  # grain and TFDS: loaded by training only

        step = self.latest.latest_step() if step is None else step
        saved_fields = saved_state_fields(self.latest.directory / str(step) / "state")
        saved = {name for name, empty in saved_fields.items() if not empty}
        wants_average = bool(getattr(abstract_state, "ema", None))
        if "ema" in saved and not wants_average:
            raise ValueError(
                f"checkpoint: {self.latest.directory / str(step)} keeps an average of the "
                "generator's weights but this config does not (optim.ema_decay = 0); "
                "resume with the config it was trained with"
            )
        started_without_average = wants_average and "ema" not in saved
        target = abstract_state
        if started_without_average:
            # A run saved before the average was switched on: restore its other fields (a
            # dict of them, as orbax stores a dataclass) and start the average from weights.
            target = {
                field.name: getattr(abstract_state, field.name)
                for field in dataclasses.fields(abstract_state)
                if field.name != "ema"
            }
            if "ema" in saved_fields:  # saved empty by a run without an average
                target["ema"] = {}
        restored = self.latest.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target),
                data=pipeline.checkpoint_restore_args(iterator),
            ),
        )
        state = restored["state"]
        if started_without_average:
            state = {name: value for name, value in state.items() if name != "ema"}
            state = abstract_state.replace(
                **state, ema={"generator": jax.tree.map(jnp.copy, state["params"]["generator"])}
            )
        return state

    def _args(self, state: Any, iterator: Any) -> ocp.args.Composite:
        from lipjax.data import pipeline  # grain and TFDS: loaded by training only

        return ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=pipeline.checkpoint_save_args(iterator)
        )

    def save(self, step: int, state: Any, iterator: Any, force: bool = False) -> None:
        """Saves asynchronously; `wait()` before reading it back or exiting."""
        self.latest.save(step, args=self._args(state, iterator), force=force)

    def save_best(self, step: int, state: Any, iterator: Any, metrics: dict) -> None:
        """Offers a checkpoint to the best-by-metric manager (kept only if it is better)."""
        self.best.save(
            step,
            args=self._args(state, iterator),
            metrics={self.best_metric: float(metrics[self.best_metric])},
            force=True,
        )

    def wait(self) -> None:
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) of a pytree of arrays, to restore into."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree,
    )


def load_params(
    checkpoint_dir: str | pathlib.Path, step: int | None = None, use_average: bool = True
) -> dict:
    """The `params` and `batch_stats` of a training checkpoint, without optimiser state.
    Where the run kept an average of the generator's weights (optim.ema_decay), that
    average is the generator returned unless `use_average` is False.

    `checkpoint_dir` is a run's WORKDIR, its `checkpoints`/`best` folder, or one step folder.
    Raises FileNotFoundError / ValueError with the path when it holds no lipjax checkpoint.
    """
    path = pathlib.Path(checkpoint_dir).absolute()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} does not exist")
    for candidate in (path / BEST, path / LATEST, path):
        if candidate.is_dir() and any(p.name.isdigit() for p in candidate.iterdir()):
            steps = sorted(int(p.name) for p in candidate.iterdir() if p.name.isdigit())
            path = candidate / str(step if step is not None else steps[-1])
            break
    state_dir = path / "state"
    if not state_dir.is_dir():
        raise ValueError(
            f"checkpoint: {path} is not a lipjax training checkpoint (no 'state' item); "
            "pass a run's workdir or one of its checkpoint folders"
        )
    tree, _ = restore_tree(state_dir)
    if "params" not in tree or "generator" not in tree["params"]:
        raise ValueError(f"checkpoint: {path} holds no generator parameters")
    params = dict(tree["params"])
    if use_average and (tree.get("ema") or {}).get("generator"):
        params["generator"] = tree["ema"]["generator"]
    return {"params": params, "batch_stats": tree["batch_stats"]}


def saved_state_fields(path: str | pathlib.Path) -> dict[str, bool]:
    """Top-level fields of a saved train state, each with whether it is empty (read from
    the metadata, not the arrays)."""
    metadata = local_checkpointer().metadata(path).item_metadata
    return {key: not value for key, value in metadata.items()}


def this_process_only() -> ocp.options.MultiprocessingOptions:
    """Orbax options for a checkpoint that this process reads or writes alone (a pretrained
    network, exported weights): no barrier waits for the other processes of a multi-host
    job, which never make the same call."""
    index = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=index, active_processes={index})


def local_checkpointer() -> ocp.StandardCheckpointer:
    """A StandardCheckpointer for this process alone (see `this_process_only`)."""
    return ocp.StandardCheckpointer(multiprocessing_options=this_process_only())


def first_local_device() -> jax.sharding.SingleDeviceSharding:
    """This process's first device: where a network restored for one process lives (in a
    multi-host job `jax.devices()[0]` belongs to process 0)."""
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def abstract_on_first_local_device(leaf: Any) -> jax.ShapeDtypeStruct:
    """Where to restore an array (or its metadata) for this process alone."""
    return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=first_local_device())


def save_tree(path: str | pathlib.Path, tree: Any, metadata: dict | None = None) -> pathlib.Path:
    """Saves a pytree of arrays (replacing what is at `path`) with JSON-able `metadata`."""
    path = pathlib.Path(path).absolute()
    with local_checkpointer() as checkpointer:
        checkpointer.save(path, jax.device_get(tree), force=True, custom_metadata=metadata)
    return path


def restore_tree(path: str | pathlib.Path) -> tuple[Any, dict]:
    """(pytree, metadata) saved by `save_tree` (or a train state's `state` item), restored
    onto this process's first device whatever mesh it was saved from (a run trained on 8
    devices loads on a laptop). Raises FileNotFoundError naming `path` when it is absent."""
    path = pathlib.Path(path).absolute()
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with local_checkpointer() as checkpointer:
        metadata = checkpointer.metadata(path)
        target = jax.tree.map(abstract_on_first_local_device, metadata.item_metadata.tree)
        tree = checkpointer.restore(path, target)
    return tree, dict(metadata.custom_metadata or {})


def write_json(path: str | pathlib.Path, content: Any) -> None:
    """Writes JSON atomically (a temporary file, then a rename): a report beside a
    checkpoint is never seen half-written."""
    path = pathlib.Path(path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(content, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)
