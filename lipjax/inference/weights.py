"""Generator weights for inference: load them from a training run or from lipjax's defaults.

A weights folder holds `model.json` (the `config.model` fields of the run, including its
`architecture`: "paper", "chung" or "vondrick"; absent means "paper") and `variables/`
(an orbax checkpoint of the generator's params and BatchNorm statistics, nothing else).
lipjax ships one, trained on `synthetic_lips` (`lipjax/assets/default_weights`); make one
from any run with

    python -m lipjax.cli.export_weights --checkpoint=runs/synthetic_long --output=DIR
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import pathlib
import shutil
from typing import Any

import flax.linen as nn

from lipjax import checkpointing
from lipjax.models import build_generator

MODEL_FILE = "model.json"
VARIABLES_DIR = "variables"
DEFAULT_WEIGHTS_NAME = "default_weights"


@dataclasses.dataclass(frozen=True)
class Weights:
    """What `generate()` needs: the generator's architecture and its variables."""

    model: dict  # config.model of the training run
    params: Any  # generator params
    batch_stats: Any  # generator BatchNorm running statistics
    source: str = ""  # where they were loaded from (for messages)

    def generator(self, conv3d_impl: str = "auto") -> nn.Module:
        """The flax module of `model["architecture"]` (`models.build_generator`, as in
        training), its 3D convolutions and up-sampling computed the fastest exact way for
        the backend ("auto", `lipjax.models.layers.resolve_impl`): the same function, only
        the speed differs."""
        return build_generator(self.model, conv3d_impl=conv3d_impl)

    @property
    def variables(self) -> dict:
        return {"params": self.params, "batch_stats": self.batch_stats}


def default_weights_path() -> pathlib.Path:
    return pathlib.Path(str(importlib.resources.files("lipjax") / "assets" / DEFAULT_WEIGHTS_NAME))


def _find_run_config(path: pathlib.Path) -> pathlib.Path | None:
    """config.json of the training run that `path` (a workdir or a folder in it) belongs to."""
    for folder in (path, *path.parents):
        candidate = folder / "config.json"
        if candidate.is_file():
            return candidate
    return None


def load_weights(path: str | pathlib.Path | None = None) -> Weights:
    """Weights from a weights folder, a training run's workdir (its best checkpoint, else
    its latest) or one of its checkpoint folders; `None` loads lipjax's default weights.

    Raises FileNotFoundError / ValueError naming the path when it holds no lipjax weights.
    """
    if path is None:
        path = default_weights_path()
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(
                f"lipjax's default weights are missing from {path}; reinstall lipjax or pass "
                "a checkpoint (a training run's workdir)"
            )
    path = pathlib.Path(path).absolute()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} does not exist")
    if (path / MODEL_FILE).is_file():
        model = json.loads((path / MODEL_FILE).read_text())
        tree, _ = checkpointing.restore_tree(path / VARIABLES_DIR)
        return Weights(model, tree["params"], tree["batch_stats"], str(path))
    config_path = _find_run_config(path)
    if config_path is None:
        raise ValueError(
            f"checkpoint: {path} is neither a lipjax weights folder ({MODEL_FILE}) nor inside "
            "a training run (no config.json in it or above it)"
        )
    config = json.loads(config_path.read_text())
    if "model" not in config:
        raise ValueError(f"checkpoint: {config_path} is not a lipjax training config (no 'model')")
    variables = checkpointing.load_params(path)
    return Weights(
        config["model"],
        variables["params"]["generator"],
        variables["batch_stats"]["generator"],
        str(path),
    )


def save_weights(weights: Weights, path: str | pathlib.Path) -> pathlib.Path:
    """Writes a weights folder at `path` (replaced if present)."""
    path = pathlib.Path(path).absolute()
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MODEL_FILE).write_text(json.dumps(weights.model, indent=2, sort_keys=True))
    checkpointing.save_tree(
        path / VARIABLES_DIR, {"params": weights.params, "batch_stats": weights.batch_stats}
    )
    return path
