"""Audio encoder of the generator (paper Sec. 3.1; docs/design.md, "Generator")."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import ConvBlock, Dtype, scale_width

# (output channels, stride over (time, mel)) of the five 3x3 convolutions.
AUDIO_ENCODER_LAYERS = ((32, 1), (64, 2), (128, 1), (256, 2), (256, (1, 2)))


class AudioEncoder(nn.Module):
    """Log-mel spectrogram (B, 4T, 128, 1) -> audio features f_s (B, T, 16, 256).

    Five 2D convolutions over (time, mel), each k3 p1, no bias, + BatchNorm + ReLU:
    1->32 s1, 32->64 s2, 64->128 s1, 128->256 s2, 256->256 s(1,2). The time axis is down-sampled
    4x (4 mel frames per video frame), the mel axis 8x: f_s is (time, frequency, channels).
    """

    width: float = 1.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, spectrogram: jax.Array, train: bool) -> jax.Array:
        x = spectrogram
        for index, (channels, stride) in enumerate(AUDIO_ENCODER_LAYERS):
            x = ConvBlock(
                scale_width(channels, self.width),
                (3, 3),
                stride,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"conv_{index + 1}",
            )(x, train)
        return x
