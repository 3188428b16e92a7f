"""Lip-movement generator (paper Sec. 3.1, Fig. 2-3; docs/design.md, "Generator")."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.audio_encoder import AudioEncoder
from lipjax.models.identity_encoder import IdentityEncoder
from lipjax.models.layers import (
    ConvBlock,
    Dtype,
    ResidualBlock,
    UpsampleBlock,
    he_normal,
    make_conv,
    scale_width,
)

# With `identity_skip`, the identity image is clipped to +-IDENTITY_SKIP_CLIP before atanh so
# that pixels at exactly +-1 give a finite logit (atanh(0.999) = 3.8).
IDENTITY_SKIP_CLIP = 0.999


def identity_skip_output(logits: jax.Array, identity_image: jax.Array, dtype: Dtype) -> jax.Array:
    """video = tanh(logits + atanh(clip(p_r, +-IDENTITY_SKIP_CLIP))): zero logits give the
    (clipped) identity image. logits (B, T, H, W, 3); identity (B, H, W, 3), repeated over
    time, or one per frame (B, T, H, W, 3) (a warped identity).
    """
    identity = jnp.clip(identity_image.astype(jnp.float32), -IDENTITY_SKIP_CLIP, IDENTITY_SKIP_CLIP)
    if identity.ndim == 4:
        identity = identity[:, None]
    video = jnp.tanh(logits.astype(jnp.float32) + jnp.arctanh(identity))
    return video.astype(dtype)


def warp_image(image: jax.Array, flow: jax.Array) -> jax.Array:
    """Backward warp of one image per clip by a flow per frame, bilinear (the sampler of
    spatial transformers, Jaderberg et al. 2015), borders clamped.

    image (B, H, W, C), flow (B, T, H, W, 2) in pixels as (dx, dy):
    out[b, t, y, x] = image[b, y + dy, x + dx], interpolated. Zero flow returns the image
    exactly, and the output is differentiable in the flow.
    """
    batch, height, width, channels = image.shape
    rows = jnp.arange(height, dtype=jnp.float32)[:, None]
    cols = jnp.arange(width, dtype=jnp.float32)[None, :]
    flow = flow.astype(jnp.float32)
    x = jnp.clip(cols + flow[..., 0], 0.0, width - 1.0)
    y = jnp.clip(rows + flow[..., 1], 0.0, height - 1.0)
    x0 = jnp.clip(jnp.floor(x), 0, width - 2)
    y0 = jnp.clip(jnp.floor(y), 0, height - 2)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    x0 = x0.astype(jnp.int32)
    y0 = y0.astype(jnp.int32)
    pixels = image.astype(jnp.float32).reshape(batch, height * width, channels)

    def gather(yy, xx):
        index = (yy * width + xx).reshape(batch, -1)
        values = jnp.take_along_axis(pixels, index[..., None], axis=1)
        return values.reshape(*yy.shape, channels)

    top = gather(y0, x0) * (1.0 - wx) + gather(y0, x0 + 1) * wx
    bottom = gather(y0 + 1, x0) * (1.0 - wx) + gather(y0 + 1, x0 + 1) * wx
    return top * (1.0 - wy) + bottom * wy


def fuse_audio_identity(
    audio_features: jax.Array, image_features: jax.Array, frequency_axis: str = "width"
) -> jax.Array:
    """Audio-identity fusion by duplication and concatenation (paper Fig. 3).

    audio_features f_s (B, T, F, C_s) and image_features f_p (B, H, W, C_p) with H == W == F
    -> (B, T, H, W, C_s + C_p). f_p is copied T times; each time step of f_s is copied across
    the image so that its frequency axis lies along `frequency_axis`: "width" (lipjax),
    out[b, t, h, w, :C_s] = f_s[b, t, w], or "height" (the authors' code),
    out[b, t, h, w, :C_s] = f_s[b, t, h]; out[b, t, h, w, C_s:] = f_p[b, h, w].
    """
    batch, time, freq, channels = audio_features.shape
    height, width = image_features.shape[1:3]
    if freq != width or freq != height:
        raise ValueError(
            f"audio frequency size {freq} must equal the image features' height and width "
            f"({height} x {width})"
        )
    if frequency_axis == "width":
        audio = audio_features[:, :, None, :, :]
    elif frequency_axis == "height":
        audio = audio_features[:, :, :, None, :]
    else:
        raise ValueError(
            f"model.audio_frequency_axis: expected 'width' or 'height', got {frequency_axis!r}"
        )
    audio = jnp.broadcast_to(audio, (batch, time, height, width, channels))
    image = broadcast_over_time(image_features, time)
    return jnp.concatenate([audio, image.astype(audio.dtype)], axis=-1)


def broadcast_over_time(features: jax.Array, num_frames: int) -> jax.Array:
    """(B, H, W, C) -> (B, num_frames, H, W, C): one image's features for every frame."""
    return jnp.broadcast_to(features[:, None], (features.shape[0], num_frames, *features.shape[1:]))


def fuse_code_identity(audio_code: jax.Array, image_features: jax.Array) -> jax.Array:
    """The "dense" audio fusion: audio_code (B, T, C_s), one vector per frame, copied to every
    pixel, beside f_p (B, H, W, C_p) copied to every frame -> (B, T, H, W, C_s + C_p)."""
    batch, time, channels = audio_code.shape
    height, width = image_features.shape[1:3]
    audio = jnp.broadcast_to(audio_code[:, :, None, None], (batch, time, height, width, channels))
    image = broadcast_over_time(image_features, time)
    return jnp.concatenate([audio, image.astype(audio.dtype)], axis=-1)


class Generator(nn.Module):
    """Speech + one identity image -> a lip video (paper Sec. 3.1, docs/design.md, "Generator").

    `__call__(spectrogram (B, 4T, 128, 1), identity_image (B, 64, 64, 3), train)` returns
    `(video, audio_features)`: the video (B, T, 64, 64, 3) in [-1, 1] (T = 16 for the
    64 mel frames of a window) and the audio encoder's f_s (B, T, 16, 256 * width), which
    the correlation loss consumes.

    Fields:
      width: channel multiplier (1.0 = paper sizes).
      num_residual_blocks: residual blocks of the decoder (paper: 9).
      upsample: "transposed" (paper) or "subpixel" (about 2x faster on XLA CPU).
      identity_skip: when True the decoder predicts a residual on top of the identity image:
        video = tanh(logits + atanh(clip(p_r, +-0.999))), p_r repeated over time; with zero
        logits the output is the (clipped) identity image. Not in the paper (False there).
      conv3d_impl: "native", "taps" (`layers.conv3d_as_2d_taps`) or "auto" (the backend's
        fastest, `layers.resolve_impl`): the same function and parameters; "taps" is several
        times faster on CPU.
      upsample_impl: how the "transposed" up-sampling is computed: "native"
        (`lax.conv_transpose`), "phases" (its exact sub-pixel decomposition) or "auto"; the
        same function and parameters.
      remat: recompute the residual blocks' activations in the backward pass instead of
        storing them (`nn.remat`): less memory, the same function and parameters.
      output_kernel: kernel size of the last Conv3d on every axis (paper: 7). At 64x64 that
        layer is the most expensive of the generator; CPU configs use 3.
      audio_width: channel multiplier of the audio encoder alone (0 = `width`). The audio
        encoder is a small share of the FLOPs, so a CPU-sized model can afford a wider one.
      warp_identity: with `identity_skip`, the decoder also predicts a flow per frame (two
        more output channels, in pixels) that warps the identity image before the residual
        is added: lips can move by displacing pixels instead of being repainted. Zero
        logits still give the identity image. Not in the paper (False there).
      warp_flow_scale: pixels of flow per unit of those two output channels. Adam moves a
        weight by about its learning rate per step whatever the gradient's size, so a
        larger scale lets the flow reach several pixels within a CPU-length schedule.
      identity_unet_skips: the identity encoder's 32 px and 64 px feature maps are
        concatenated to the decoder's after the up-sampling to that size, the same map for
        every frame (U-Net skips, Ronneberger et al. 2015, as in Chung et al.'s Speech2Vid
        decoder). Not in the paper (False there).
      audio_fusion: "paper" lays the audio features' frequency axis along the image width
        (Fig. 3), so with a shallow decoder each image column hears only a band of mel
        bins; "dense" maps each frame's audio features (frequency x channels) through one
        dense layer to a code of the same channels copied to every pixel, so every pixel
        hears every bin. "paper" in the paper configs.
      audio_frequency_axis: with audio_fusion "paper", the image axis the audio frequency
        lies along: "width" (lipjax; the paper's Fig. 3 does not say which) or "height" (the
        authors' code, docs/FIDELITY.md). Same parameters, a different function, so it is
        recorded with every run and weights folder; "width" where a record lacks it.
    """

    width: float = 1.0
    num_residual_blocks: int = 9
    upsample: str = "transposed"
    identity_skip: bool = False
    conv3d_impl: str = "auto"
    upsample_impl: str = "auto"
    remat: bool = False
    output_kernel: int = 7
    audio_width: float = 0.0
    warp_identity: bool = False
    warp_flow_scale: float = 1.0
    identity_unet_skips: bool = False
    audio_fusion: str = "paper"
    audio_frequency_axis: str = "width"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(
        self, spectrogram: jax.Array, identity_image: jax.Array, train: bool
    ) -> tuple[jax.Array, jax.Array]:
        if self.warp_identity and not self.identity_skip:
            raise ValueError("model.warp_identity needs model.identity_skip (it warps the skip)")
        if self.audio_fusion not in ("paper", "dense"):
            raise ValueError(
                f"model.audio_fusion: expected 'paper' or 'dense', got {self.audio_fusion!r}"
            )
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        conv3d = {"conv3d_impl": self.conv3d_impl, **common}
        audio_width = self.audio_width or self.width
        audio_features = AudioEncoder(audio_width, **common, name="audio_encoder")(
            spectrogram, train
        )
        image_features, identity_skips = IdentityEncoder(
            self.width, return_skips=True, **common, name="identity_encoder"
        )(identity_image, train)

        features = scale_width(256, self.width)
        if self.audio_fusion == "dense":
            batch, num_frames, freq, channels = audio_features.shape
            code = nn.Dense(channels, kernel_init=he_normal, **common, name="audio_code")(
                audio_features.reshape((batch, num_frames, freq * channels))
            )
            x = fuse_code_identity(code, image_features)
        else:
            x = fuse_audio_identity(audio_features, image_features, self.audio_frequency_axis)
        x = ConvBlock(features, (3, 3, 3), **conv3d, name="fusion")(x, train)
        # `train` (argument 2, counting the module) decides BatchNorm's mode: static.
        residual_block = (
            nn.remat(ResidualBlock, static_argnums=(2,)) if self.remat else ResidualBlock
        )
        for index in range(self.num_residual_blocks):
            x = residual_block(features, (1, 3, 3), **conv3d, name=f"residual_{index + 1}")(
                x, train
            )
        for index, channels in enumerate((128, 64)):
            x = UpsampleBlock(
                scale_width(channels, self.width),
                self.upsample,
                upsample_impl=self.upsample_impl,
                **conv3d,
                name=f"up_{index + 1}",
            )(x, train)
            if self.identity_unet_skips:
                skip = broadcast_over_time(identity_skips[x.shape[2]], x.shape[1])
                x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
        # With the identity skip, zero logits reproduce the identity image: training starts
        # from the static baseline instead of noise (as zero-initialised residual branches,
        # Goyal et al. 2017) and the decoder learns only where a frame differs from it.
        logits = make_conv(
            5 if self.warp_identity else 3,
            (self.output_kernel,) * 3,
            **conv3d,
            name="to_rgb",
            kernel_init=nn.initializers.zeros if self.identity_skip else he_normal,
        )(x)

        if self.warp_identity:
            warped = warp_image(identity_image, self.warp_flow_scale * logits[..., 3:])
            video = identity_skip_output(logits[..., :3], warped, self.dtype)
        elif self.identity_skip:
            video = identity_skip_output(logits, identity_image, self.dtype)
        else:
            video = jnp.tanh(logits)
        return video, audio_features
