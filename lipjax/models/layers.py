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

import functools
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
CONV3D_IMPLS = ("native", "taps", "auto")
# How the paper's transposed up-sampling convolution is computed: "native" is
# `lax.conv_transpose`, "phases" its exact sub-pixel decomposition (`transposed_as_subpixel`).
UPSAMPLE_IMPLS = ("native", "phases", "auto")

# "auto": the fastest exact implementation on each backend; every choice computes the same
# function from the same parameters. CPU: measured (benchmarks/RESULTS.md, "Up-sampling").
# GPU: not measured yet (no GPU in the sessions so far): cuDNN's 3D convolutions are fast
# natively, and "phases" avoids the gradient of conv_transpose, a known slow path of XLA on
# GPU (jax-ml/jax#31662). Re-check with `benchmarks/upsampling.py` on a GPU.
FASTEST_IMPLS = {
    "cpu": {"conv3d_impl": "taps", "upsample_impl": "phases"},
    "gpu": {"conv3d_impl": "native", "upsample_impl": "phases"},
}
_NATIVE_IMPLS = {"conv3d_impl": "native", "upsample_impl": "native"}


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


def resolve_impl(kind: str, impl: str, backend: str | None = None) -> str:
    """The implementation `impl` of `kind` ("conv3d_impl" or "upsample_impl") stands for:
    itself, or for "auto" the fastest exact one on `backend` (default: JAX's default backend,
    the one a jitted step runs on)."""
    choices = {"conv3d_impl": CONV3D_IMPLS, "upsample_impl": UPSAMPLE_IMPLS}
    if kind not in choices:
        raise ValueError(f"kind: expected one of {sorted(choices)}, got {kind!r}")
    if impl not in choices[kind]:
        raise ValueError(f"{kind} must be one of {choices[kind]}, got {impl!r}")
    if impl != "auto":
        return impl
    backend = backend or jax.default_backend()
    return FASTEST_IMPLS.get(backend, _NATIVE_IMPLS)[kind]


def same_padding(kernel_size: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """PyTorch-style symmetric padding `k // 2` on every spatial axis."""
    return tuple((k // 2, k // 2) for k in kernel_size)


# A stride-1 "taps" convolution takes its kernel gradient from `matmul_kernel_grad` when it
# has at most NARROW_OUTPUT_FEATURES outputs (the generator's k7 64->3 RGB convolution) or at
# most SMALL_KERNEL_TAPS taps on H x W (the phases of `transposed_as_subpixel`): measured
# 1.3x to 3.7x faster than XLA's own on CPU for those; 3x3 kernels keep XLA's.
NARROW_OUTPUT_FEATURES = 4
SMALL_KERNEL_TAPS = 4


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
    0.6 s / 1.2 s as taps (MEASURED.md, re-measured for this module). With stride 1 and few
    outputs or a small kernel (`NARROW_OUTPUT_FEATURES`, `SMALL_KERNEL_TAPS`), the kernel
    gradient is computed as matrix products (`matmul_kernel_grad`). Dilation is not
    supported.
    """
    del unused
    if lhs.ndim != 5:
        raise ValueError(f"conv3d_as_2d_taps expects NDHWC inputs, got shape {lhs.shape}")
    if any(d != 1 for d in (lhs_dilation or ())) or any(d != 1 for d in (rhs_dilation or ())):
        raise ValueError("conv3d_as_2d_taps does not support dilation")
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(lhs.shape[1:4], rhs.shape[:3], window_strides, padding)
    else:
        pads = list(padding)
    pads = tuple((int(low), int(high)) for low, high in pads)
    matmul_grad = (
        tuple(window_strides) == (1, 1, 1)
        and feature_group_count == 1
        and precision is None
        and (
            rhs.shape[-1] <= NARROW_OUTPUT_FEATURES
            or rhs.shape[1] * rhs.shape[2] <= SMALL_KERNEL_TAPS
        )
    )
    if matmul_grad:
        return _conv3d_with_matmul_kernel_grad(lhs, rhs, pads)
    return _conv3d_taps(lhs, rhs, tuple(window_strides), pads, feature_group_count, precision)


def _conv3d_taps(lhs, rhs, window_strides, pads, feature_group_count=1, precision=None):
    kernel_t = rhs.shape[0]
    stride_t, *spatial_strides = window_strides
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


def matmul_kernel_grad(
    lhs: jax.Array, output_grad: jax.Array, kernel_shape: Sequence[int], pads
) -> jax.Array:
    """The kernel gradient of a stride-1 3D convolution (NDHWC, DHWIO kernel) as kt matrix
    products: XLA's own (a convolution over the whole clip with the output features as its
    own) runs at a few GFLOP/s on CPU when those are few or the kernel is small.

    grad[a, i, j] = sum_p x_padded[p + (a, i, j)] dy[p]. The (i, j) shifts go into the
    columns of dy, stacked: D[t, h', w', (i, j, c)] = dy[t, h' - i, w' - j, c] (zero outside),
    so that grad[a] = x_padded[frames a .. a + T]^T D, one product per temporal tap.
    """
    kernel_t, kernel_h, kernel_w, in_features, out_features = kernel_shape
    x = jnp.pad(lhs, ((0, 0), *pads, (0, 0)))
    frames = output_grad.shape[1]
    shifted = [
        jnp.pad(output_grad, ((0, 0), (0, 0), (i, kernel_h - 1 - i), (j, kernel_w - 1 - j), (0, 0)))
        for i in range(kernel_h)
        for j in range(kernel_w)
    ]
    columns = jnp.stack(shifted, axis=-2).reshape(-1, kernel_h * kernel_w * out_features)
    grads = [
        jnp.matmul(
            x[:, tap : tap + frames].reshape(-1, in_features).T,
            columns,
            preferred_element_type=jnp.float32,
        )
        for tap in range(kernel_t)
    ]
    grad = jnp.stack(grads).reshape(kernel_t, in_features, kernel_h, kernel_w, out_features)
    return jnp.transpose(grad, (0, 2, 3, 1, 4))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv3d_with_matmul_kernel_grad(lhs: jax.Array, rhs: jax.Array, pads) -> jax.Array:
    return _conv3d_taps(lhs, rhs, (1, 1, 1), pads)


def _conv3d_with_matmul_kernel_grad_forward(lhs, rhs, pads):
    return _conv3d_taps(lhs, rhs, (1, 1, 1), pads), (lhs, rhs)


def _conv3d_with_matmul_kernel_grad_backward(pads, residuals, output_grad):
    lhs, rhs = residuals
    _, input_vjp = jax.vjp(lambda x: _conv3d_taps(x, rhs, (1, 1, 1), pads), lhs)
    (lhs_grad,) = input_vjp(output_grad)
    rhs_grad = matmul_kernel_grad(lhs, output_grad, rhs.shape, pads)
    return lhs_grad, rhs_grad.astype(rhs.dtype)


_conv3d_with_matmul_kernel_grad.defvjp(
    _conv3d_with_matmul_kernel_grad_forward, _conv3d_with_matmul_kernel_grad_backward
)


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
    `conv3d_as_2d_taps` for 3D kernels (same parameters, faster on CPU); "auto" picks the
    backend's fastest (`resolve_impl`)."""
    kernel_size = tuple(kernel_size)
    use_taps = resolve_impl("conv3d_impl", conv3d_impl) == "taps" and len(kernel_size) == 3
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


# The paper's up-sampling convolution: kernel 3, stride 2 on H and W (1 on leading axes),
# PyTorch padding 1 and output_padding 1, as `lax.conv_transpose` paddings of the
# stride-dilated input: (k - 1 - p, k - 1 - p + output_padding) on the up-sampled axes.
TRANSPOSED_KERNEL = 3
TRANSPOSED_UPSAMPLED_PADDING = ((1, 2), (1, 2))
# Along an up-sampled axis that layer computes y[2m] = w[1] x[m] and
# y[2m + 1] = w[0] x[m] + w[2] x[m + 1]: each output phase is a stride-1 convolution of x,
# with the kernel taps PHASE_TAPS[phase] (and one zero of padding at the end for phase 1).
PHASE_TAPS = ((1,), (0, 2))


def transposed_as_subpixel(
    x: jax.Array, kernel: jax.Array, conv3d_impl: str = "native", precision: Any = None
) -> jax.Array:
    """The paper's up-sampling transposed convolution (`TRANSPOSED_*`, stride 2 on the last
    two spatial axes) computed exactly as its sub-pixel decomposition (Shi et al. 2016, "Is
    the deconvolution layer the same as a convolutional layer?"): one stride-1 convolution
    per output phase (dy, dx) with that phase's kernel taps (1x1, 1x2, 2x1 and 2x2 on H, W:
    9 taps in all, no multiplications by the zeros of a stride-dilated input), interleaved
    by depth-to-space. The same function of the same kernel as `lax.conv_transpose`; NHWC or
    NDHWC.
    """
    spatial_dims = x.ndim - 2
    if spatial_dims not in (2, 3) or kernel.ndim != spatial_dims + 2:
        raise ValueError(
            f"transposed_as_subpixel: expected NHWC/NDHWC inputs and a kernel of matching rank, "
            f"got shapes {x.shape} and {kernel.shape}"
        )
    if kernel.shape[-4:-2] != (TRANSPOSED_KERNEL, TRANSPOSED_KERNEL):
        raise ValueError(
            f"transposed_as_subpixel: expected a 3x3 kernel on H, W, got shape {kernel.shape}"
        )
    lead = spatial_dims - 2
    lead_padding = tuple((k // 2, k // 2) for k in kernel.shape[:lead])
    use_taps = spatial_dims == 3 and resolve_impl("conv3d_impl", conv3d_impl) == "taps"
    layout = "NDHWC" if spatial_dims == 3 else "NHWC"
    dimension_numbers = (layout, layout[1:-1] + "IO", layout)

    def conv(phase_kernel, padding):
        if use_taps:
            return conv3d_as_2d_taps(x, phase_kernel, (1, 1, 1), padding, precision=precision)
        return lax.conv_general_dilated(
            x, phase_kernel, (1,) * spatial_dims, padding, dimension_numbers=dimension_numbers,
            precision=precision,
        )  # fmt: skip

    rows = []
    for phase_y, taps_y in enumerate(PHASE_TAPS):
        row = []
        for phase_x, taps_x in enumerate(PHASE_TAPS):
            phase_kernel = jnp.take(
                jnp.take(kernel, jnp.array(taps_y), axis=lead), jnp.array(taps_x), axis=lead + 1
            )
            row.append(conv(phase_kernel, (*lead_padding, (0, phase_y), (0, phase_x))))
        rows.append(jnp.stack(row, axis=-2))  # (..., H, W, dx, C)
    y = jnp.stack(rows, axis=-4)  # (..., H, dy, W, dx, C)
    *batch, height, _, width, _, channels = y.shape
    return y.reshape((*batch, 2 * height, 2 * width, channels))


class TransposedUpsampleConv(nn.Module):
    """The paper's up-sampling convolution (kernel 3, stride 2 on H and W, no bias), with the
    parameter `kernel` of `nn.ConvTranspose` (same shape, init and name, so checkpoints are
    interchangeable), computed as `impl` says: "native" (`lax.conv_transpose`, what
    nn.ConvTranspose runs), "phases" (`transposed_as_subpixel`, exact) or "auto"."""

    features: int
    impl: str = "auto"
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        impl = resolve_impl("upsample_impl", self.impl)
        spatial_dims = x.ndim - 2
        kernel = self.param(
            "kernel",
            he_normal,
            (TRANSPOSED_KERNEL,) * spatial_dims + (x.shape[-1], self.features),
            self.param_dtype,
        )
        x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
        if impl == "phases":
            return transposed_as_subpixel(x, kernel, self.conv3d_impl)
        padding = ((1, 1),) * (spatial_dims - 2) + TRANSPOSED_UPSAMPLED_PADDING
        strides = (1,) * (spatial_dims - 2) + (2, 2)
        return lax.conv_transpose(x, kernel, strides, padding)


class UpsampleBlock(nn.Module):
    """Up-sampling by 2 in H and W (+ BN + ReLU), 2D or 3D by the input's rank.

    `mode="transposed"`: ConvTranspose, kernel 3 on every axis, stride 2 in H, W (stride 1 in
    time), padded so the output is exactly 2x (PyTorch `padding=1, output_padding=1`).
    `mode="subpixel"`: Conv, kernel 3, to 4x channels (ICNR init), then depth-to-space in H, W.
    The two are not the same function but span the same family of learnable 2x up-samplings;
    sub-pixel is about 2x faster on XLA CPU (MEASURED.md). It honours `conv3d_impl`.
    `upsample_impl` says how "transposed" is computed (`TransposedUpsampleConv`): "native",
    "phases" (its exact sub-pixel decomposition) or "auto"; the parameters are the same.
    """

    features: int
    mode: str = "transposed"
    conv3d_impl: str = "native"
    upsample_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        spatial_dims = x.ndim - 2
        if spatial_dims not in (2, 3):
            raise ValueError(f"UpsampleBlock expects NHWC or NDHWC inputs, got shape {x.shape}")
        kernel_size = (3,) * spatial_dims
        if self.mode == "transposed":
            x = TransposedUpsampleConv(
                self.features,
                self.upsample_impl,
                self.conv3d_impl,
                self.dtype,
                self.param_dtype,
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
