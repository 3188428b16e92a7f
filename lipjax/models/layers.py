"""Building blocks shared by the lipjax networks (channels-last, flax.linen).

Conventions used by every module in `lipjax.models`:

* `dtype` is the compute dtype (float32 by default; bfloat16 works) and `param_dtype` the
  storage dtype of the parameters (float32). Outputs come back in `dtype`; the loss helpers
  compute in float32.
* Convolutions use He (Kaiming) normal initialisation (SPEC "Generator": Init), PyTorch-style
  explicit zero padding `kernel // 2` unless stated otherwise, and no bias when followed by
  BatchNorm.
* BatchNorm follows PyTorch's defaults (momentum 0.1, i.e. flax momentum 0.9, eps 1e-5) and
  uses batch statistics when `train=True`, running averages otherwise.
"""

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Dtype = Any
Activation = Callable[[jax.Array], jax.Array] | None

he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
"""Kaiming normal initialisation, fan-in mode, gain sqrt(2) (as PyTorch's `kaiming_normal_`)."""

UPSAMPLE_MODES = ("transposed", "subpixel")
CONV3D_IMPLS = ("native", "taps")


def relu(x: jax.Array) -> jax.Array:
    return nn.relu(x)


def leaky_relu_02(x: jax.Array) -> jax.Array:
    """LeakyReLU with slope 0.2 (GAN discriminator)."""
    return nn.leaky_relu(x, negative_slope=0.2)


def leaky_relu_01(x: jax.Array) -> jax.Array:
    """LeakyReLU with slope 0.1 (FlowNetS)."""
    return nn.leaky_relu(x, negative_slope=0.1)


def scale_width(channels: int, width: float, minimum: int = 4) -> int:
    """Channel count `channels * width`, rounded, never below `min(channels, minimum)`."""
    return max(min(channels, minimum), round(channels * width))


def same_padding(kernel_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """PyTorch-style symmetric padding `k // 2` on every spatial axis."""
    return tuple((k // 2, k // 2) for k in kernel_size)


def conv3d_as_2d_taps(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    **unused: Any,
) -> jax.Array:
    """Drop-in for `lax.conv_general_dilated` on NDHWC inputs: a 3D convolution computed as
    the sum over its temporal taps of 2D convolutions.

    Mathematically identical to the native 3D convolution (same kernel layout, so the
    parameters are interchangeable), but several times faster on XLA's CPU backend: the
    paper-size final Conv3d k7 64->3 takes 5.7 s forward / 15 s forward+backward natively and
    0.6 s / 1.2 s as taps (MEASURED.md, re-measured for this module). Dilation is not
    supported.
    """
    del unused
    if lhs.ndim != 5:
        raise ValueError(f"conv3d_as_2d_taps expects NDHWC inputs, got shape {lhs.shape}")
    if any(d != 1 for d in (lhs_dilation or ())) or any(d != 1 for d in (rhs_dilation or ())):
        raise ValueError("conv3d_as_2d_taps does not support dilation")
    kernel_t = rhs.shape[0]
    stride_t, *spatial_strides = window_strides
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(lhs.shape[1:4], rhs.shape[:3], window_strides, padding)
    else:
        pads = list(padding)
    time_pad, *spatial_pads = pads
    x = jnp.pad(lhs, ((0, 0), time_pad, (0, 0), (0, 0), (0, 0)))
    batch, padded_t = x.shape[:2]
    out_t = (padded_t - kernel_t) // stride_t + 1
    total = None
    for tap in range(kernel_t):
        frames = x[:, tap : tap + stride_t * (out_t - 1) + 1 : stride_t]
        y = lax.conv_general_dilated(
            frames.reshape((-1, *frames.shape[2:])),
            rhs[tap],
            window_strides=spatial_strides,
            padding=spatial_pads,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=feature_group_count,
            precision=precision,
        )
        total = y if total is None else total + y
    return total.reshape((batch, out_t, *total.shape[1:]))


def make_conv(
    features: int,
    kernel_size: Sequence[int],
    strides: Sequence[int] | int = 1,
    padding: str | Sequence[tuple[int, int]] | None = None,
    use_bias: bool = True,
    conv3d_impl: str = "native",
    dtype: Dtype = jnp.float32,
    param_dtype: Dtype = jnp.float32,
    name: str | None = None,
    kernel_init: Callable = he_normal,
) -> nn.Conv:
    """An `nn.Conv` with He init and PyTorch-style padding; `conv3d_impl="taps"` swaps in
    `conv3d_as_2d_taps` for 3D kernels (same parameters, faster on CPU)."""
    kernel_size = tuple(kernel_size)
    if conv3d_impl not in CONV3D_IMPLS:
        raise ValueError(f"conv3d_impl must be one of {CONV3D_IMPLS}, got {conv3d_impl!r}")
    use_taps = conv3d_impl == "taps" and len(kernel_size) == 3
    return nn.Conv(
        features,
        kernel_size,
        strides=strides,
        padding=same_padding(kernel_size) if padding is None else padding,
        use_bias=use_bias,
        kernel_init=kernel_init,
        dtype=dtype,
        param_dtype=param_dtype,
        conv_general_dilated=conv3d_as_2d_taps if use_taps else None,
        name=name,
    )


def batch_norm(train: bool, dtype: Dtype, param_dtype: Dtype, name: str | None = None):
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        dtype=dtype,
        param_dtype=param_dtype,
        name=name,
    )


class ConvBlock(nn.Module):
    """Convolution (+ BatchNorm) (+ activation), 2D or 3D depending on `len(kernel_size)`.

    The convolution has no bias when BatchNorm follows it. `padding=None` means symmetric
    zero padding `k // 2` (PyTorch `padding=k//2`); any `nn.Conv` padding is accepted.
    """

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] | int = 1
    padding: str | Sequence[tuple[int, int]] | None = None
    use_norm: bool = True
    activation: Activation = relu
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = make_conv(
            self.features,
            self.kernel_size,
            self.strides,
            self.padding,
            use_bias=not self.use_norm,
            conv3d_impl=self.conv3d_impl,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="conv",
        )(x)
        if self.use_norm:
            x = batch_norm(train, self.dtype, self.param_dtype, name="norm")(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class ResidualBlock(nn.Module):
    """conv + BN + ReLU + conv + BN, plus the identity (no activation after the sum).

    `kernel_size=(1, 3, 3)` gives the generator's 3D block (SPEC "Decoder"), `(3, 3)` the 2D
    block of the perceptual autoencoder.
    """

    features: int
    kernel_size: Sequence[int] = (1, 3, 3)
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        common = {
            "kernel_size": self.kernel_size,
            "conv3d_impl": self.conv3d_impl,
            "dtype": self.dtype,
            "param_dtype": self.param_dtype,
        }
        y = ConvBlock(self.features, **common, name="conv_1")(x, train)
        y = ConvBlock(self.features, activation=None, **common, name="conv_2")(y, train)
        return x + y


def icnr(base_init: Callable = he_normal, block: int = 2) -> Callable:
    """ICNR initialisation of a sub-pixel convolution (Aitken et al. 2017, "Checkerboard
    artifact free sub-pixel convolution"): the kernel of each of the block*block output
    phases starts as the same He-initialised kernel, so that convolution + depth-to-space
    starts as convolution + nearest-neighbour up-sampling (no checkerboard at init)."""

    def init(key, shape, dtype=jnp.float32):
        *spatial, in_features, out_features = shape
        phases = block * block
        if out_features % phases:
            raise ValueError(f"icnr: {out_features} output channels is not a multiple of {phases}")
        base = base_init(key, (*spatial, in_features, out_features // phases), dtype)
        # depth_to_space orders channels (dy, dx, c): phase-major, so tile along the last axis.
        return jnp.tile(base, (1,) * (len(shape) - 1) + (phases,))

    return init


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
    """(..., H, W, block*block*C) -> (..., block*H, block*W, C); channels ordered (dy, dx, c)."""
    *lead, height, width, channels = x.shape
    out_channels = channels // (block * block)
    x = x.reshape((*lead, height, width, block, block, out_channels))
    n = len(lead)
    # (..., H, dy, W, dx, C)
    x = jnp.transpose(x, (*range(n), n, n + 2, n + 1, n + 3, n + 4))
    return x.reshape((*lead, height * block, width * block, out_channels))


class UpsampleBlock(nn.Module):
    """Up-sampling by 2 in H and W (+ BN + ReLU), 2D or 3D by the input's rank.

    `mode="transposed"`: ConvTranspose, kernel 3 on every axis, stride 2 in H, W (stride 1 in
    time), padded so the output is exactly 2x (PyTorch `padding=1, output_padding=1`).
    `mode="subpixel"`: Conv, kernel 3, to 4x channels (ICNR init), then depth-to-space in H, W.
    The two are not the same function but span the same family of learnable 2x up-samplings;
    sub-pixel is about 2x faster on XLA CPU (MEASURED.md). It honours `conv3d_impl`.
    """

    features: int
    mode: str = "transposed"
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        spatial_dims = x.ndim - 2
        if spatial_dims not in (2, 3):
            raise ValueError(f"UpsampleBlock expects NHWC or NDHWC inputs, got shape {x.shape}")
        kernel_size = (3,) * spatial_dims
        if self.mode == "transposed":
            strides = (1,) * (spatial_dims - 2) + (2, 2)
            # lax.conv_transpose pads the stride-dilated input: (k-1-p, k-1-p+output_padding)
            # with PyTorch's p=1, output_padding=1 on the up-sampled axes.
            padding = ((1, 1),) * (spatial_dims - 2) + ((1, 2), (1, 2))
            x = nn.ConvTranspose(
                self.features,
                kernel_size,
                strides=strides,
                padding=padding,
                use_bias=False,
                kernel_init=he_normal,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name="conv",
            )(x)
        elif self.mode == "subpixel":
            x = make_conv(
                4 * self.features,
                kernel_size,
                use_bias=False,
                conv3d_impl=self.conv3d_impl,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name="conv",
                kernel_init=icnr(),
            )(x)
            x = depth_to_space(x, 2)
        else:
            raise ValueError(f"upsample mode must be one of {UPSAMPLE_MODES}, got {self.mode!r}")
        x = batch_norm(train, self.dtype, self.param_dtype, name="norm")(x)
        return nn.relu(x)


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """Euclidean norm along `axis` whose gradient is 0 (not NaN) at the zero vector."""
    squared = jnp.sum(jnp.square(x), axis=axis)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)
