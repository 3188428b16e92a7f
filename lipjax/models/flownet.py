"""FlowNetS (Dosovitskiy et al., ICCV 2015) in Flax: the differentiable optical flow F(v) of
the correlation loss and of the discriminator's flow stream (paper Sec. 3.2, 4.2; SPEC
"Optical flow").

Units: FlowNetS regresses flow in whatever units its training targets use (SPEC: pixels / 20
at full resolution). Every prediction, coarse or fine, is in the units of the target as given
to `multiscale_epe`: the target is average-pooled to each scale but its values are not
rescaled.
"""

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import (
    Dtype,
    he_normal,
    leaky_relu_01,
    make_conv,
    safe_norm,
    scale_width,
)

# Encoder of FlowNetS: (name, kernel size, stride). Channel widths in FLOWNET_CHANNELS.
FLOWNET_ENCODER = (
    ("conv1", 7, 2),
    ("conv2", 5, 2),
    ("conv3", 5, 2),
    ("conv3_1", 3, 1),
    ("conv4", 3, 2),
    ("conv4_1", 3, 1),
    ("conv5", 3, 2),
    ("conv5_1", 3, 1),
    ("conv6", 3, 2),
    ("conv6_1", 3, 1),
)
FLOWNET_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512, 1024, 1024)
# Decoder, coarse to fine: (encoder skip it joins, channels of the up-convolution).
FLOWNET_DECODER = (("conv5_1", 512), ("conv4_1", 256), ("conv3_1", 128), ("conv2", 64))

MULTISCALE_WEIGHTS = (0.005, 0.01, 0.02, 0.08, 0.32)
"""FlowNet's multi-scale loss weights, paired with the predictions FINEST FIRST (1/4 res gets
0.005, the coarsest 0.32), as in FlowNet's training where each scale's end-point error is
summed over its pixels: the larger weights of coarse scales offset their fewer pixels."""


class FlowNetS(nn.Module):
    """Two stacked RGB frames (B, H, W, 6), H and W multiples of 64 -> flow predictions.

    Returns a tuple of five flows (B, h, w, 2), FINEST FIRST: for 64x64 inputs 16x16 (1/4
    res, the flow to use), 8x8, 4x4, 2x2, 1x1. No BatchNorm; LeakyReLU 0.1. Each decoder
    level up-convolves the features (k4 s2), up-samples the coarser flow (k4 s2, 2->2) and
    concatenates both with the encoder skip, as in FlowNetS. The first image is the first
    three channels; flow points from it to the second.
    """

    width: float = 1.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, frame_pair: jax.Array) -> tuple[jax.Array, ...]:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        skips = {}
        x = frame_pair
        for (name, kernel, stride), channels in zip(FLOWNET_ENCODER, FLOWNET_CHANNELS, strict=True):
            x = make_conv(
                scale_width(channels, self.width), (kernel, kernel), stride, **common, name=name
            )(x)
            x = leaky_relu_01(x)
            skips[name] = x

        flow = make_conv(2, (3, 3), **common, name="predict_flow6")(x)
        predictions = [flow]
        for level, (skip_name, channels) in zip(range(5, 1, -1), FLOWNET_DECODER, strict=True):
            up_features = leaky_relu_01(
                _up_conv(scale_width(channels, self.width), True, f"deconv{level}", **common)(x)
            )
            up_flow = _up_conv(2, False, f"upsample_flow{level + 1}_to_{level}", **common)(flow)
            x = jnp.concatenate([skips[skip_name], up_features, up_flow], axis=-1)
            flow = make_conv(2, (3, 3), **common, name=f"predict_flow{level}")(x)
            predictions.append(flow)
        return tuple(reversed(predictions))


def _up_conv(features: int, use_bias: bool, name: str, **common: Any) -> nn.ConvTranspose:
    """Exact 2x up-convolution, kernel 4 (PyTorch ConvTranspose2d(k=4, s=2, p=1))."""
    # lax.conv_transpose pads the stride-dilated input by k - 1 - p = 2 on each side.
    return nn.ConvTranspose(
        features,
        (4, 4),
        strides=(2, 2),
        padding=((2, 2), (2, 2)),
        use_bias=use_bias,
        kernel_init=he_normal,
        name=name,
        **common,
    )


def video_flows(
    flownet_apply: Callable[[Any, jax.Array], Sequence[jax.Array]],
    variables: Any,
    video: jax.Array,
) -> jax.Array:
    """Finest flows of every consecutive frame pair: video (B, T, H, W, 3) -> (B, T-1, H/4, W/4, 2).

    `flownet_apply(variables, pairs)` is e.g. `FlowNetS(...).apply`; all B * (T-1) pairs
    [v_t, v_t+1] go through it as one batch.
    """
    batch, time = video.shape[:2]
    pairs = jnp.concatenate([video[:, :-1], video[:, 1:]], axis=-1)
    predictions = flownet_apply(variables, pairs.reshape((-1, *pairs.shape[2:])))
    finest = predictions[0]
    return finest.reshape((batch, time - 1, *finest.shape[1:]))


def downsample_flow(flow: jax.Array, height: int, width: int) -> jax.Array:
    """Average-pool a flow (..., H, W, 2) to (..., height, width, 2); values are not rescaled."""
    *lead, full_height, full_width, channels = flow.shape
    if full_height % height or full_width % width:
        raise ValueError(f"cannot pool {full_height}x{full_width} to {height}x{width}")
    blocks = flow.reshape(
        (*lead, height, full_height // height, width, full_width // width, channels)
    )
    return jnp.mean(blocks, axis=(-4, -2))


def multiscale_epe(
    predictions: Sequence[jax.Array],
    target_flow: jax.Array,
    weights: Sequence[float] = MULTISCALE_WEIGHTS,
    reduction: str = "sum",
) -> jax.Array:
    """Weighted multi-scale end-point error, float32.

    predictions: flows (N, h_i, w_i, 2) in FlowNetS order (finest first), paired with `weights`.
    target_flow: (N, H, W, 2), H and W multiples of every h_i, w_i, in the units the
    predictions should learn. At each scale the target is average-pooled to (h_i, w_i); the
    end-point error is averaged over N and, per `reduction`, summed over pixels ("sum",
    FlowNet's convention: per unit of weight the 16x16 scale counts 256x the 1x1 one) or
    averaged over them ("mean", the authors' fine-tuning: flownet/multiscaleloss.py line 35
    of lelechen63/3d_gan, an L1Loss of the EPE map against zeros).
    """
    if len(predictions) != len(weights):
        raise ValueError(f"{len(predictions)} predictions but {len(weights)} weights")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    pixel_reduce = jnp.sum if reduction == "sum" else jnp.mean
    target = target_flow.astype(jnp.float32)
    total = jnp.zeros((), jnp.float32)
    for prediction, weight in zip(predictions, weights, strict=True):
        height, width = prediction.shape[-3:-1]
        error = safe_norm(prediction.astype(jnp.float32) - downsample_flow(target, height, width))
        total = total + weight * jnp.mean(pixel_reduce(error, axis=(-2, -1)))
    return total
