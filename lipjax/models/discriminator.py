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
The streams are concatenated, then Conv3d k3 -> 512 + BN + activation and Conv3d kernel
(T', 4, 4) VALID -> one logit per example.

`layout` chooses between two readings of the same figure (docs/FIDELITY.md):
  "authors"   the authors' code (lelechen63/3d_gan@83b65d9): BatchNorm on all four audio
              convolutions; the three-stream D (model_flownet_diff.py) ends its video stream
              at 256 channels and puts its audio dense layer through BatchNorm (no bias); the
              two-stream D (model_corr.py) keeps 512 and a biased dense layer. Parameters at
              paper size: three 54,278,881, two 55,593,249.
  "lipjax_v1" lipjax before issue 24: no BatchNorm on the first audio convolution, a biased
              dense layer and a 512-channel video stream in every variant (three: 62,012,353).
`activation` is "relu" (the authors' code) or "leaky_relu" (slope 0.2, lipjax before issue 24).
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import (
    ConvBlock,
    Dtype,
    batch_norm,
    he_normal,
    leaky_relu_02,
    make_conv,
    relu,
    scale_width,
)

STREAM_VARIANTS = ("three", "two", "frame_diff")
LAYOUTS = ("authors", "lipjax_v1")
ACTIVATIONS = {"relu": relu, "leaky_relu": leaky_relu_02}

# (channels, stride, batch norm) per layer.
AUDIO_STREAM = ((32, 1, True), (64, 2, True), (128, 1, True), (256, 2, True))
AUDIO_STREAM_V1 = ((32, 1, False), *AUDIO_STREAM[1:])
VIDEO_STREAM = ((64, 2, False), (128, 2, True), (256, 2, True), (512, (1, 2, 2), True))
# The authors' three-stream D narrows the video stream's last layer to 256 (its joint conv
# takes 256 video + 256 flow + 256 audio channels, model_flownet_diff.py lines 169-184).
VIDEO_STREAM_NARROW = (*VIDEO_STREAM[:3], (256, (1, 2, 2), True))
MOTION_STREAM = ((64, 2, False), (128, (2, 1, 1), True), (256, 2, True), (256, (2, 1, 1), True))


class _ConvStack(nn.Module):
    """A stack of ConvBlocks; `first_conv` overrides the first layer's (kernel, stride,
    padding). `padding=None` is `kernel // 2` on every axis."""

    layers: Sequence[tuple[int, int | tuple[int, ...], bool]]
    kernel_size: Sequence[int]
    width: float
    activation: Callable[[jax.Array], jax.Array] = relu
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
                activation=self.activation,
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
    layout: "authors" or "lipjax_v1"; activation: "relu" or "leaky_relu" (module docstring).
    """

    width: float = 1.0
    streams: str = "three"
    layout: str = "authors"
    activation: str = "relu"
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, spectrogram: jax.Array, video: jax.Array, flows: jax.Array | None, train: bool
    ) -> jax.Array:
        if self.streams not in STREAM_VARIANTS:
            raise ValueError(f"streams must be one of {STREAM_VARIANTS}, got {self.streams!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        activation = ACTIVATIONS[self.activation]
        authors = self.layout == "authors"
        common = {
            "width": self.width,
            "activation": activation,
            "dtype": self.dtype,
            "param_dtype": self.param_dtype,
        }
        conv3d = {"conv3d_impl": self.conv3d_impl, **common}

        audio_layers = AUDIO_STREAM if authors else AUDIO_STREAM_V1
        audio = _ConvStack(audio_layers, (3, 3), **common, name="audio_stream")(spectrogram, train)
        # The authors' three-stream D: Linear without bias + BatchNorm1d (ops.linear);
        # their two-stream D: a biased Linear (model_corr.py line 159).
        dense_norm = authors and self.streams != "two"
        audio = nn.Dense(
            scale_width(256, self.width),
            use_bias=not dense_norm,
            kernel_init=he_normal,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="audio_dense",
        )(audio.reshape((audio.shape[0], -1)))
        if dense_norm:
            audio = batch_norm(train, self.dtype, self.param_dtype, name="audio_dense_norm")(audio)
        audio = activation(audio)

        video_layers = VIDEO_STREAM_NARROW if dense_norm else VIDEO_STREAM
        visual = _ConvStack(
            video_layers, (4, 4, 4), padding=((1, 1),) * 3, **conv3d, name="video_stream"
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
            activation=activation,
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
