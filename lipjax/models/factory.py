"""The one place that turns `config.model` into a generator module.

Training (`train_step.build_networks`), evaluation (`evaluate.load_generator`, through
`build_networks`) and inference (`weights.Weights.generator`, used by `generate()`) all
build their generator here, so that `config.model.architecture` selects the same network
everywhere:

* "paper": our reimplementation of Chen et al. (ECCV 2018), `Generator`;
* "chung": Chung et al., "You said that?" (BMVC 2017), frame by frame, `ChungGenerator`;
* "vondrick": a conditional two-stream video GAN after Vondrick et al. (NIPS 2016),
  `VondrickGenerator`.

`model` may be a `ConfigDict` or the plain dict a weights folder's `model.json` holds;
fields a module does not take are ignored and missing ones take the module's defaults (a
config without `architecture` is the paper's model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from lipjax.models.chung_baseline import ChungGenerator
from lipjax.models.generator import Generator
from lipjax.models.vondrick_baseline import VondrickGenerator

ARCHITECTURES = {"paper": Generator, "chung": ChungGenerator, "vondrick": VondrickGenerator}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# config.model field -> module field, for each architecture.
_FIELDS = {
    "paper": {
        "width": "width",
        "generator_residual_blocks": "num_residual_blocks",
        "upsample": "upsample",
        "identity_skip": "identity_skip",
        "output_kernel": "output_kernel",
        "conv3d_impl": "conv3d_impl",
        "upsample_impl": "upsample_impl",
        "remat": "remat",
        "audio_width": "audio_width",
        "warp_identity": "warp_identity",
        "warp_flow_scale": "warp_flow_scale",
        "identity_unet_skips": "identity_unet_skips",
        "audio_fusion": "audio_fusion",
        "audio_frequency_axis": "audio_frequency_axis",
    },
    "chung": {"width": "width", "upsample": "upsample", "identity_skip": "identity_skip"},
    "vondrick": {
        "width": "width",
        "upsample": "upsample",
        "identity_skip": "identity_skip",
        "conv3d_impl": "conv3d_impl",
    },
}


def architecture_of(model: Mapping[str, Any]) -> str:
    """`model.architecture` ("paper" when absent), checked."""
    architecture = model.get("architecture", "paper")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"model.architecture: expected one of {sorted(ARCHITECTURES)}, got {architecture!r}"
        )
    return architecture


def build_generator(model: Mapping[str, Any], *, conv3d_impl: str | None = None) -> nn.Module:
    """The generator `model` (config.model or a model.json dict) describes.

    `conv3d_impl` overrides the config's (the same function; inference picks it by backend).
    """
    architecture = architecture_of(model)
    dtype_name = model.get("compute_dtype", "float32")
    if dtype_name not in DTYPES:
        raise ValueError(
            f"model.compute_dtype: expected one of {sorted(DTYPES)}, got {dtype_name!r}"
        )
    fields = _FIELDS[architecture]
    kwargs = {field: model[key] for key, field in fields.items() if key in model}
    if conv3d_impl is not None and "conv3d_impl" in fields.values():
        kwargs["conv3d_impl"] = conv3d_impl
    return ARCHITECTURES[architecture](**kwargs, dtype=DTYPES[dtype_name])
