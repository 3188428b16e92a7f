"""Per-frame autoencoder whose encoder gives the perceptual-loss features (paper Sec. 4.1;
docs/design.md, "Perceptual loss")."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import (
    ConvBlock,
    Dtype,
    ResidualBlock,
    UpsampleBlock,
    make_conv,
    scale_width,
)


class PerceptualEncoder(nn.Module):
    """Frames (N, 64, 64, 3) -> features (N, 16, 16, 256): 7x7 conv 3->64 (reflection pad),
    3x3 s2 ->128, 3x3 s2 ->256 (each + BN + ReLU), then `num_residual_blocks` 2D residual
    blocks."""

    width: float = 1.0
    num_residual_blocks: int = 6
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, frames: jax.Array, train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        x = ConvBlock(
            scale_width(64, self.width), (7, 7), padding="REFLECT", **common, name="conv_1"
        )(frames, train)
        x = ConvBlock(scale_width(128, self.width), (3, 3), 2, **common, name="conv_2")(x, train)
        features = scale_width(256, self.width)
        x = ConvBlock(features, (3, 3), 2, **common, name="conv_3")(x, train)
        for index in range(self.num_residual_blocks):
            x = ResidualBlock(features, (3, 3), **common, name=f"residual_{index + 1}")(x, train)
        return x


class PerceptualDecoder(nn.Module):
    """Features (N, 16, 16, 256) -> frames (N, 64, 64, 3) in [-1, 1]: two 2x up-samplings
    256->128->64 (+ BN + ReLU), 7x7 conv 64->3 (reflection pad) + tanh."""

    width: float = 1.0
    upsample: str = "transposed"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, features: jax.Array, train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        x = features
        for index, channels in enumerate((128, 64)):
            x = UpsampleBlock(
                scale_width(channels, self.width), self.upsample, **common, name=f"up_{index + 1}"
            )(x, train)
        x = make_conv(3, (7, 7), padding="REFLECT", **common, name="to_rgb")(x)
        return jnp.tanh(x)


class PerceptualAutoencoder(nn.Module):
    """Frame autoencoder; its frozen encoder is the perceptual-loss feature extractor phi.

    `__call__(frames, train)` reconstructs; `encode(frames, train=False)` returns the
    features after the residual blocks, (..., 16, 16, 256 * width). Both accept any number of
    leading axes, e.g. single frames (B, 64, 64, 3) or whole videos (B, T, 64, 64, 3).
    Initialise through `__call__` (it creates the encoder and the decoder).
    """

    width: float = 1.0
    num_residual_blocks: int = 6
    upsample: str = "transposed"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self):
        self.encoder = PerceptualEncoder(
            self.width, self.num_residual_blocks, self.dtype, self.param_dtype
        )
        self.decoder = PerceptualDecoder(self.width, self.upsample, self.dtype, self.param_dtype)

    def encode(self, frames: jax.Array, train: bool = False) -> jax.Array:
        lead = frames.shape[:-3]
        features = self.encoder(frames.reshape((-1, *frames.shape[-3:])), train)
        return features.reshape((*lead, *features.shape[1:]))

    def __call__(self, frames: jax.Array, train: bool) -> jax.Array:
        lead = frames.shape[:-3]
        flat = frames.reshape((-1, *frames.shape[-3:]))
        reconstruction = self.decoder(self.encoder(flat, train), train)
        return reconstruction.reshape((*lead, *reconstruction.shape[1:]))


def perceptual_loss(features_real: jax.Array, features_fake: jax.Array) -> jax.Array:
    """l_perc: mean squared difference of the encoder features (paper Eq. 3), float32."""
    difference = features_real.astype(jnp.float32) - features_fake.astype(jnp.float32)
    return jnp.mean(jnp.square(difference))
