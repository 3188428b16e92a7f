"""Table 3 baseline: Chung, Jamaludin and Zisserman, "You said that?" (BMVC 2017).

Their Speech2Vid model generates ONE face image from 0.35 s of speech and a still image
of the speaker: an audio encoder and an identity encoder (VGG-M style) each give a
256-d vector, and an image decoder with skip connections from the identity encoder turns
the two into the frame. It is trained with an L1 reconstruction loss only; a video is
generated frame by frame, each frame from the 0.35 s of audio centred on it.

Our paper (Chen et al., ECCV 2018, Sec. 5.4) compares against it with three changes, made
here as well: the identity encoder is not pretrained, two convolution layers are changed
to fit 64 x 64 images (here: the identity encoder's `fc6`, a 4 x 4 convolution over the
4 x 4 map a 64 x 64 image leaves, and the decoder's `fc8`, which projects to a 4 x 4 map),
and the de-blurring post-processing is omitted.

Our own adaptations to lipjax's inputs:
* Audio: our 128-band log-mel features (100 mel frames per second, 4 per video frame)
  instead of their 12 MFCCs; the window of frame t is the 35 mel frames (0.35 s) whose
  centres lie within 170 ms of the frame's centre (mel frame 4t + 2). Frames near the
  ends of the 16-frame input are zero-padded (zero = the corpus-mean log-mel after
  normalisation). The first two audio convolutions stride 2 over the mel axis so that
  128 bands reach the fully connected layer at the size 12 MFCCs would.
* 16 frames are 16 applications of the same network. They run as one batch of B x 16
  images; with `train=False` frame t depends on nothing but its own audio window and the
  identity image (tests/test_baselines.py checks this). In training, BatchNorm's batch
  statistics are taken over all B x 16 images.
* Upsampling follows `upsample` ("transposed" or "subpixel", as our generator) and
  `identity_skip` makes the last layer a residual on the identity image (CPU sizes).

`ChungGenerator.__call__` has the signature of `Generator`: (spectrogram (B, 4T, 128, 1),
identity (B, 64, 64, 3), train) -> (video (B, T, 64, 64, 3) in [-1, 1], the per-frame audio
embeddings (B, T, 256 * width)).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.generator import identity_skip_output
from lipjax.models.layers import (
    ConvBlock,
    Dtype,
    UpsampleBlock,
    batch_norm,
    he_normal,
    make_conv,
    scale_width,
)

AUDIO_WINDOW = 35  # mel frames = 0.35 s, Chung et al.'s audio input length
MELS_PER_FRAME = 4  # lipjax.data.audio.MELS_PER_VIDEO_FRAME
EMBEDDING = 256  # size of each encoder's output vector (their fc7)


def frame_audio_windows(spectrogram: jax.Array, window: int = AUDIO_WINDOW) -> jax.Array:
    """(B, 4T, F, 1) -> (B, T, window, F, 1): for every video frame t the `window` mel
    frames centred on the frame's centre (mel frame 4t + 2), zero-padded at the ends.

    `window` must be odd (so that it is centred on a mel frame)."""
    if window % 2 != 1:
        raise ValueError(f"audio window must be an odd number of mel frames, got {window}")
    mels = spectrogram.shape[1]
    if mels % MELS_PER_FRAME:
        raise ValueError(f"expected {MELS_PER_FRAME} mel frames per video frame, got {mels}")
    num_frames = mels // MELS_PER_FRAME
    half, centre = window // 2, MELS_PER_FRAME // 2
    before = max(0, half - centre)
    after = max(0, MELS_PER_FRAME * (num_frames - 1) + centre + half - (mels - 1))
    padded = jnp.pad(spectrogram, ((0, 0), (before, after), (0, 0), (0, 0)))
    starts = MELS_PER_FRAME * jnp.arange(num_frames) + centre - half + before
    index = starts[:, None] + jnp.arange(window)[None, :]
    return padded[:, index]


def _dense_block(x, features, train, common, name):
    """Fully connected layer + BatchNorm + ReLU (their fc6, fc7, fc8)."""
    x = nn.Dense(features, use_bias=False, kernel_init=he_normal, **common, name=name)(x)
    x = batch_norm(train, common["dtype"], common["param_dtype"], name=f"{name}_norm")(x)
    return nn.relu(x)


def _max_pool(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")


class ChungAudioEncoder(nn.Module):
    """Audio window (N, 35, 128, 1) -> embedding (N, 256): conv1 3x3 64 s(1,2), conv2 3x3
    128 s(1,2), pool 3x3 s2, conv3-5 3x3 256, pool 3x3 s2, fc6 512, fc7 256; every layer
    BatchNorm + ReLU. (35, 128) -> (35, 64) -> (35, 32) -> (18, 16) -> (9, 8)."""

    width: float = 1.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, audio: jax.Array, train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        x = ConvBlock(scale_width(64, self.width), (3, 3), (1, 2), **common, name="conv_1")(
            audio, train
        )
        x = ConvBlock(scale_width(128, self.width), (3, 3), (1, 2), **common, name="conv_2")(
            x, train
        )
        x = _max_pool(x)
        for index in (3, 4, 5):
            x = ConvBlock(scale_width(256, self.width), (3, 3), **common, name=f"conv_{index}")(
                x, train
            )
        x = _max_pool(x).reshape((x.shape[0], -1))
        x = _dense_block(x, scale_width(512, self.width), train, common, "fc_6")
        return _dense_block(x, scale_width(EMBEDDING, self.width), train, common, "fc_7")


class ChungIdentityEncoder(nn.Module):
    """Identity image (B, 64, 64, 3) -> (embedding (B, 256), skip features).

    conv1 7x7 96 s2 (32x32), pool 3x3 s2 (16x16), conv2 5x5 256 s2 (8x8), pool 3x3 s2 (4x4),
    conv3-5 3x3 512 (4x4), fc6 = 4x4 VALID convolution to 512 (1x1; sized for 64x64
    inputs), fc7 256. Skips: the 32x32, 16x16, 8x8 and 4x4 maps, keyed by their size.
    """

    width: float = 1.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image: jax.Array, train: bool) -> tuple[jax.Array, dict[int, jax.Array]]:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        skips = {}
        x = ConvBlock(scale_width(96, self.width), (7, 7), 2, **common, name="conv_1")(image, train)
        skips[x.shape[1]] = x
        x = _max_pool(x)
        skips[x.shape[1]] = x
        x = ConvBlock(scale_width(256, self.width), (5, 5), 2, **common, name="conv_2")(x, train)
        skips[x.shape[1]] = x
        x = _max_pool(x)
        for index in (3, 4, 5):
            x = ConvBlock(scale_width(512, self.width), (3, 3), **common, name=f"conv_{index}")(
                x, train
            )
        skips[x.shape[1]] = x
        x = ConvBlock(
            scale_width(512, self.width), x.shape[1:3], padding="VALID", **common, name="fc_6"
        )(x, train)
        x = x.reshape((x.shape[0], -1))
        return _dense_block(x, scale_width(EMBEDDING, self.width), train, common, "fc_7"), skips


class ChungDecoder(nn.Module):
    """[audio, identity] embedding (N, 512) + identity skips -> image logits (N, 64, 64, 3).

    fc8 -> 4x4x512; then at 4, 8, 16, 32 px: concatenate the identity encoder's map of that
    size, conv 3x3 + BN + ReLU, up-sample 2x (512 -> 256 -> 128 -> 96 -> 64 channels); at
    64 px conv 3x3 64 and a 3x3 convolution to RGB logits.
    """

    width: float = 1.0
    upsample: str = "transposed"
    zero_init_output: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, code: jax.Array, skips: dict[int, jax.Array], train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        channels = scale_width(512, self.width)
        x = _dense_block(code, 4 * 4 * channels, train, common, "fc_8")
        x = x.reshape((x.shape[0], 4, 4, channels))
        stages = ((4, 512, 256), (8, 256, 128), (16, 128, 96), (32, 96, 64))
        for size, conv_channels, up_channels in stages:
            skip = skips[size]
            repeats = x.shape[0] // skip.shape[0]  # each identity serves its T frames
            x = jnp.concatenate([x, jnp.repeat(skip, repeats, axis=0).astype(x.dtype)], -1)
            x = ConvBlock(scale_width(conv_channels, self.width), (3, 3), **common,
                          name=f"conv_{size}")(x, train)  # fmt: skip
            x = UpsampleBlock(scale_width(up_channels, self.width), self.upsample, **common,
                              name=f"up_{size}")(x, train)  # fmt: skip
        x = ConvBlock(scale_width(64, self.width), (3, 3), **common, name="conv_64")(x, train)
        return make_conv(
            3,
            (3, 3),
            **common,
            name="to_rgb",
            kernel_init=nn.initializers.zeros if self.zero_init_output else he_normal,
        )(x)


class ChungGenerator(nn.Module):
    """Chung et al.'s frame-by-frame generator with the interface of `Generator`.

    Fields:
      width: channel multiplier (1.0 = the sizes above).
      upsample: "transposed" or "subpixel" (`layers.UpsampleBlock`).
      identity_skip: the last layer predicts a residual on the identity image, starting at
        zero (as `Generator.identity_skip`; for CPU sizes; False for the paper's baseline).
      audio_window: mel frames per generated frame (35 = 0.35 s, Chung et al.).
    """

    width: float = 1.0
    upsample: str = "transposed"
    identity_skip: bool = False
    audio_window: int = AUDIO_WINDOW
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, spectrogram: jax.Array, identity_image: jax.Array, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        common = {"width": self.width, "dtype": self.dtype, "param_dtype": self.param_dtype}
        windows = frame_audio_windows(spectrogram, self.audio_window)
        batch, num_frames = windows.shape[:2]
        audio = ChungAudioEncoder(**common, name="audio_encoder")(
            windows.reshape((batch * num_frames, *windows.shape[2:])), train
        )
        identity, skips = ChungIdentityEncoder(**common, name="identity_encoder")(
            identity_image, train
        )
        # One decoder call per frame: frame b*T + t sees audio window t of clip b.
        code = jnp.concatenate([audio, jnp.repeat(identity, num_frames, axis=0)], axis=-1)
        logits = ChungDecoder(
            **common, upsample=self.upsample, zero_init_output=self.identity_skip, name="decoder"
        )(code, skips, train)
        logits = logits.reshape((batch, num_frames, *logits.shape[1:]))
        if self.identity_skip:
            video = identity_skip_output(logits, identity_image, self.dtype)
        else:
            video = jnp.tanh(logits)
        return video, audio.reshape((batch, num_frames, -1))
