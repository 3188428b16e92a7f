"""Orbax checkpoints of a training run: the latest few, and the best by a metric.

Each checkpoint holds the train state (arrays, restored with their shardings) and the
grain input iterator's position (one JSON file per process), so a resumed run continues
with exactly the next batch.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

LATEST = "checkpoints"
BEST = "best"


class Checkpointer:
    """`WORKDIR/checkpoints` (latest `keep`) and `WORKDIR/best` (lowest `best_metric`)."""

    def __init__(self, workdir: str | pathlib.Path, keep: int = 3, best_metric: str = "lmd"):
        workdir = pathlib.Path(workdir).absolute()
        self.best_metric = best_metric
        self.latest = ocp.CheckpointManager(
            workdir / LATEST,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
            item_names=("state", "data"),
        )
        self.best = ocp.CheckpointManager(
            workdir / BEST,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1,
                best_fn=lambda metrics: metrics[best_metric],
                best_mode="min",
                create=True,
            ),
            item_names=("state", "data"),
        )

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state: Any, iterator: Any, step: int | None = None) -> Any:
        """Restores the state of `step` (default: the latest) and moves `iterator` (a grain
        iterator built like the saved one) to the saved position."""
        from lipjax import input_pipeline  # grain and TFDS: loaded by training only

        step = self.latest.latest_step() if step is None else step
        restored = self.latest.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                data=input_pipeline.checkpoint_restore_args(iterator),
            ),
        )
        return restored["state"]

    def _args(self, state: Any, iterator: Any) -> ocp.args.Composite:
        from lipjax import input_pipeline  # grain and TFDS: loaded by training only

        return ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=input_pipeline.checkpoint_save_args(iterator)
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


def load_params(checkpoint_dir: str | pathlib.Path, step: int | None = None) -> dict:
    """The `params` and `batch_stats` of a training checkpoint, without optimiser state.

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
    tree = restore_on_one_device(state_dir)
    if "params" not in tree or "generator" not in tree["params"]:
        raise ValueError(f"checkpoint: {path} holds no generator parameters")
    return {"params": tree["params"], "batch_stats": tree["batch_stats"]}


def restore_on_one_device(path: str | pathlib.Path) -> Any:
    """An orbax pytree checkpoint restored onto this process's first device, whatever mesh
    it was saved from (a run trained on 8 devices loads on a laptop)."""
    checkpointer = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    metadata = checkpointer.metadata(path).item_metadata
    target = jax.tree.map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device), metadata
    )
    return checkpointer.restore(path, target)
