"""Three-stream GAN discriminator (paper Sec. 4.2, Fig. 5; SPEC "Three-stream discriminator").

Shapes for the SPEC's inputs (T = 16 frames, 64x64):
  audio stream   (B, 64, 128, 1) -> (B, 16, 32, 256) -> dense -> (B, 256),
                 tiled to (B, 1, 4, 4, 256)
  video stream   (B, 16, 64, 64, 3), k4 p1, strides 2, 2, 2, (1,2,2) -> (B, 1, 4, 4, 512)
  flow stream    (B, 15, 16, 16, 2), k3 p1, strides 2, (2,1,1), 2, (2,1,1) -> (B, 1, 4, 4, 256)
  frame-diff     (B, 15, 64, 64, 3): the flow stream with its first convolution made a
                 patchifying kernel (3, 8, 8) stride (2, 8, 8), temporal padding 1 only, so
                 64x64 -> 8x8 like the flow stream's 16x16 -> 8x8, every pixel seen once.
                 -> (B, 1, 4, 4, 256)
So T' = 1 for every stream with PyTorch-style padding; no extra padding choice was needed.
The streams are concatenated (1024 channels for "three", 768 for "two"), then Conv3d k3 ->
512 + BN + LeakyReLU and Conv3d kernel (T', 4, 4) VALID -> one logit per example.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import (
    ConvBlock,
    Dtype,
    he_normal,
    leaky_relu_02,
    make_conv,
    scale_width,
)

STREAM_VARIANTS = ("three", "two", "frame_diff")

# (channels, stride, batch norm) per layer; all convolutions LeakyReLU 0.2.
AUDIO_STREAM = ((32, 1, False), (64, 2, True), (128, 1, True), (256, 2, True))
VIDEO_STREAM = ((64, 2, False), (128, 2, True), (256, 2, True), (512, (1, 2, 2), True))
MOTION_STREAM = ((64, 2, False), (128, (2, 1, 1), True), (256, 2, True), (256, (2, 1, 1), True))


class _ConvStack(nn.Module):
    """A stack of ConvBlocks with LeakyReLU 0.2; `first_conv` overrides the first layer's
    (kernel, stride, padding). `padding=None` is `kernel // 2` on every axis."""

    layers: Sequence[tuple[int, int | tuple[int, ...], bool]]
    kernel_size: Sequence[int]
    width: float
    padding: Sequence[tuple[int, int]] | None = None
    first_conv: tuple | None = None
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        for index, (channels, stride, use_norm) in enumerate(self.layers):
            kernel_size, padding = self.kernel_size, self.padding
            if index == 0 and self.first_conv is not None:
                kernel_size, stride, padding = self.first_conv
            x = ConvBlock(
                scale_width(channels, self.width),
                kernel_size,
                stride,
                padding,
                use_norm=use_norm,
                activation=leaky_relu_02,
                conv3d_impl=self.conv3d_impl,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"conv_{index + 1}",
            )(x, train)
        return x


class Discriminator(nn.Module):
    """Audio-conditioned video discriminator; returns logits (B,) (pre-sigmoid).

    `__call__(spectrogram (B, 64, 128, 1), video (B, 16, 64, 64, 3), flows, train)`:
    `flows` (B, 15, 16, 16, 2) is required for `streams="three"` and ignored (may be None)
    otherwise.

    streams: "three" (audio + video + optical flow, the paper's model), "two" (audio + video,
    Tab. 2 (g), (h)) or "frame_diff" (third stream on |v_t+1 - v_t|, Tab. 2 (i)).
    """

    width: float = 1.0
    streams: str = "three"
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, spectrogram: jax.Array, video: jax.Array, flows: jax.Array | None, train: bool
    ) -> jax.Array:
        if self.streams not in STREAM_VARIANTS:
            raise ValueError(f"streams must be one of {STREAM_VARIANTS}, got {self.streams!r}")
        common = {"width": self.width, "dtype": self.dtype, "param_dtype": self.param_dtype}
        conv3d = {"conv3d_impl": self.conv3d_impl, **common}

        audio = _ConvStack(AUDIO_STREAM, (3, 3), **common, name="audio_stream")(spectrogram, train)
        audio = nn.Dense(
            scale_width(256, self.width),
            kernel_init=he_normal,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="audio_dense",
        )(audio.reshape((audio.shape[0], -1)))
        audio = leaky_relu_02(audio)

        visual = _ConvStack(
            VIDEO_STREAM, (4, 4, 4), padding=((1, 1),) * 3, **conv3d, name="video_stream"
        )(video, train)
        streams = [visual]
        if self.streams == "three":
            if flows is None:
                raise ValueError('streams="three" needs the optical flows')
            streams.append(
                _ConvStack(MOTION_STREAM, (3, 3, 3), **conv3d, name="flow_stream")(flows, train)
            )
        elif self.streams == "frame_diff":
            frame_diff = jnp.abs(video[:, 1:] - video[:, :-1])
            patchify = ((3, 8, 8), (2, 8, 8), ((1, 1), (0, 0), (0, 0)))
            streams.append(
                _ConvStack(
                    MOTION_STREAM, (3, 3, 3), first_conv=patchify, **conv3d, name="diff_stream"
                )(frame_diff, train)
            )
        grid = visual.shape[1:4]
        for stream in streams[1:]:
            if stream.shape[1:4] != grid:
                raise ValueError(f"stream shapes disagree: {stream.shape} vs {visual.shape}")
        audio = jnp.broadcast_to(
            audio[:, None, None, None, :], (*visual.shape[:4], audio.shape[-1])
        )

        x = jnp.concatenate([audio, *streams], axis=-1)
        x = ConvBlock(
            scale_width(512, self.width),
            (3, 3, 3),
            activation=leaky_relu_02,
            conv3d_impl=self.conv3d_impl,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="joint",
        )(x, train)
        logits = make_conv(
            1,
            grid,
            padding="VALID",
            conv3d_impl=self.conv3d_impl,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="to_logit",
        )(x)
        return logits.reshape((logits.shape[0],))
