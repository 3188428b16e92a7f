"""Table 3 baseline: a conditional video GAN after Vondrick, Pirsiavash and Torralba,
"Generating videos with scene dynamics" (NIPS 2016).

Vondrick et al.'s generator maps a code vector to a video through two streams:
* foreground: 3D fractionally strided convolutions (kernel 4, stride 2 in time and space,
  512 -> 256 -> 128 -> 64 channels, BatchNorm + ReLU) to a video f (tanh) and a mask m
  (sigmoid), both (T, 64, 64);
* background: the same with 2D convolutions to ONE static image b (tanh);
* video = m * f + (1 - m) * b, with a sparsity prior lambda * |m|_1 on the mask so that
  the static background is used (here `self.sow("losses", "mask_sparsity", ...)`, weighted
  by `config.loss.mask_sparsity` in `train_step`).
Their discriminator is five 3D convolutions (64, 128, 256, 512 channels, kernel 4, stride 2,
LeakyReLU 0.2, BatchNorm on all but the first, then one logit).

Our paper (Chen et al., ECCV 2018, Sec. 5.4) extends it "to a conditional GAN structure,
which receives the same target image information and audio information as our models".
Here the code vector is [audio code, identity code] instead of noise: our generator's audio
encoder (the 64 x 128 log-mel window) and identity encoder (the 64 x 64 identity image),
each followed by two stride-2 3x3 convolutions and a fully connected layer to 256 values.
There is no noise input (generation is deterministic, as our model's). The discriminator is
`Discriminator(streams="two")`: its video stream is Vondrick's first four 3D convolutions
(64..512 channels, kernel 4, LeakyReLU 0.2, BatchNorm on all but the first), and it is
conditioned on the audio by concatenating the audio stream's vector before the last layers.

Sizes for T = 16 frames: the foreground starts at (T / 16, 4, 4, 512) (Vondrick: (2, 4, 4)
for their 32 frames) and doubles T, H and W four times; the background starts at (4, 4,
512). `upsample="subpixel"` swaps each fractionally strided convolution for a 3x3(x3)
convolution to 4x (2D) or 8x (3D) channels and a depth-to-space (faster on CPU).
`identity_skip` (CPU sizes) makes both streams residuals on the identity image whose last
layers start at zero, so the video starts as the static baseline whatever the mask.

`VondrickGenerator.__call__` has the signature of `Generator`: (spectrogram (B, 4T, 128, 1),
identity (B, 64, 64, 3), train) -> (video (B, T, 64, 64, 3) in [-1, 1], the audio code
(B, 256 * width)).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.audio_encoder import AudioEncoder
from lipjax.models.generator import identity_skip_output
from lipjax.models.identity_encoder import IdentityEncoder
from lipjax.models.layers import (
    UPSAMPLE_MODES,
    ConvBlock,
    Dtype,
    batch_norm,
    he_normal,
    make_conv,
    scale_width,
)

CODE = 256  # size of the audio code and of the identity code
STREAM_CHANNELS = (512, 256, 128, 64)  # Vondrick et al.'s generator widths
MELS_PER_FRAME = 4  # lipjax.data.audio.MELS_PER_VIDEO_FRAME


def depth_to_space_nd(x: jax.Array, axes: int) -> jax.Array:
    """(B, *S, 2**axes * C) -> (B, *2S, C) over the last `axes` spatial axes; channels are
    ordered (phase of axis 1, ..., phase of axis n, c)."""
    *lead, channels = x.shape
    spatial = lead[len(lead) - axes :]
    lead = lead[: len(lead) - axes]
    out = channels // 2**axes
    x = x.reshape((*lead, *spatial, *(2,) * axes, out))
    n = len(lead)
    order = [*range(n)]
    for axis in range(axes):
        order += [n + axis, n + axes + axis]
    x = jnp.transpose(x, (*order, n + 2 * axes))
    return x.reshape((*lead, *(2 * s for s in spatial), out))


def _icnr(phases: int):
    """ICNR (Aitken et al. 2017) for `phases` sub-pixel phases: every phase starts with the
    same kernel, so convolution + depth-to-space starts as nearest-neighbour up-sampling."""

    def init(key, shape, dtype=jnp.float32):
        base = he_normal(key, (*shape[:-1], shape[-1] // phases), dtype)
        return jnp.tile(base, (1,) * (len(shape) - 1) + (phases,))

    return init


class Upsample2x(nn.Module):
    """Doubles every axis of a 2D (NHWC) or 3D (NDHWC) input, Vondrick's up-sampling layer.

    "transposed": fractionally strided convolution, kernel 4, stride 2 (PyTorch padding 1).
    "subpixel": 3x3(x3) convolution to 2**d x channels, then depth-to-space.
    `final`: no BatchNorm or ReLU (the output layer; a bias instead, optionally zero-init).
    """

    features: int
    mode: str = "transposed"
    final: bool = False
    zero_init: bool = False
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        axes = x.ndim - 2
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype, "use_bias": self.final}
        init = nn.initializers.zeros if self.zero_init else he_normal
        if self.mode == "transposed":
            x = nn.ConvTranspose(
                self.features, (4,) * axes, strides=(2,) * axes, padding=((2, 2),) * axes,
                kernel_init=init, **common, name="conv",
            )(x)  # fmt: skip
        elif self.mode == "subpixel":
            phases = 2**axes
            x = make_conv(
                phases * self.features, (3,) * axes, conv3d_impl=self.conv3d_impl,
                kernel_init=nn.initializers.zeros if self.zero_init else _icnr(phases),
                **common, name="conv",
            )(x)  # fmt: skip
            x = depth_to_space_nd(x, axes)
        else:
            raise ValueError(f"upsample mode must be one of {UPSAMPLE_MODES}, got {self.mode!r}")
        if self.final:
            return x
        return nn.relu(batch_norm(train, self.dtype, self.param_dtype, name="norm")(x))


class _Code(nn.Module):
    """Feature map (B, H, W, C) -> code (B, 256): two 3x3 stride-2 convolutions (BN, ReLU)
    and a fully connected layer (BN, ReLU)."""

    width: float = 1.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        for index in (1, 2):
            x = ConvBlock(scale_width(CODE, self.width), (3, 3), 2, **common,
                          name=f"conv_{index}")(x, train)  # fmt: skip
        x = nn.Dense(scale_width(CODE, self.width), use_bias=False, kernel_init=he_normal,
                     **common, name="fc")(x.reshape((x.shape[0], -1)))  # fmt: skip
        return nn.relu(batch_norm(train, self.dtype, self.param_dtype, name="fc_norm")(x))


class _Stream(nn.Module):
    """Code (B, D) -> projection to `start` + BN + ReLU, three 2x up-samplings (256, 128,
    64 channels x width) and a final 2x up-sampling to `out_channels` logits."""

    start: tuple[int, ...]  # spatial shape after the projection: (T0, 4, 4) or (4, 4)
    out_channels: int
    width: float = 1.0
    upsample: str = "transposed"
    zero_init_output: bool = False
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, code: jax.Array, train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        channels = scale_width(STREAM_CHANNELS[0], self.width)
        size = 1
        for extent in self.start:
            size *= extent
        x = nn.Dense(size * channels, use_bias=False, kernel_init=he_normal, **common,
                     name="project")(code)  # fmt: skip
        x = nn.relu(batch_norm(train, self.dtype, self.param_dtype, name="project_norm")(x))
        x = x.reshape((x.shape[0], *self.start, channels))
        upsample = {"mode": self.upsample, "conv3d_impl": self.conv3d_impl, **common}
        for index, features in enumerate(STREAM_CHANNELS[1:]):
            x = Upsample2x(scale_width(features, self.width), **upsample,
                           name=f"up_{index + 1}")(x, train)  # fmt: skip
        return Upsample2x(self.out_channels, final=True, zero_init=self.zero_init_output,
                          **upsample, name="to_output")(x, train)  # fmt: skip


class VondrickGenerator(nn.Module):
    """Two-stream conditional video generator (Vondrick et al. 2016) with the interface of
    `Generator`.

    Fields:
      width: channel multiplier (1.0 = Vondrick's 512..64 channels and our encoders' sizes).
      upsample: "transposed" (Vondrick's fractionally strided convolutions) or "subpixel".
      identity_skip: foreground and background are residuals on the identity image, their
        last layers zero-initialised (CPU sizes; False for the paper's baseline).
      conv3d_impl: "native" or "taps" for the 3D convolutions of the sub-pixel mode.
    """

    width: float = 1.0
    upsample: str = "transposed"
    identity_skip: bool = False
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, spectrogram: jax.Array, identity_image: jax.Array, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        num_frames = spectrogram.shape[1] // MELS_PER_FRAME
        if num_frames % 16:
            raise ValueError(f"VondrickGenerator needs a multiple of 16 frames, got {num_frames}")
        common = {"width": self.width, "dtype": self.dtype, "param_dtype": self.param_dtype}
        features = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        audio = AudioEncoder(self.width, **features, name="audio_encoder")(spectrogram, train)
        audio = _Code(**common, name="audio_code")(audio, train)
        image = IdentityEncoder(self.width, **features, name="identity_encoder")(
            identity_image, train
        )
        image = _Code(**common, name="identity_code")(image, train)
        code = jnp.concatenate([audio, image], axis=-1)

        stream = {
            **common,
            "upsample": self.upsample,
            "zero_init_output": self.identity_skip,
            "conv3d_impl": self.conv3d_impl,
        }
        foreground = _Stream((num_frames // 16, 4, 4), 4, **stream, name="foreground")(code, train)
        background = _Stream((4, 4), 3, **stream, name="background")(code, train)
        mask = jax.nn.sigmoid(foreground[..., 3:].astype(jnp.float32))
        if self.identity_skip:
            moving = identity_skip_output(foreground[..., :3], identity_image, jnp.float32)
            static = identity_skip_output(background[:, None], identity_image, jnp.float32)
        else:
            moving = jnp.tanh(foreground[..., :3].astype(jnp.float32))
            static = jnp.tanh(background[:, None].astype(jnp.float32))
        # Vondrick et al.'s sparsity prior on the mask, collected by train_step when the
        # "losses" collection is mutable (a no-op otherwise).
        self.sow("losses", "mask_sparsity", jnp.mean(jnp.abs(mask)))
        video = mask * moving + (1.0 - mask) * static
        return video.astype(self.dtype), audio
