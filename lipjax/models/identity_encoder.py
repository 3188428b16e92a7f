"""Identity (image) encoder of the generator (paper Sec. 3.1; docs/design.md, "Generator")."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import ConvBlock, Dtype, scale_width


class IdentityEncoder(nn.Module):
    """Identity image p_r (B, 64, 64, 3) -> image features f_p (B, 16, 16, 256).

    7x7 conv 3->64 with reflection padding 3, then 3x3 s2 64->128 and 3x3 s2 128->256 (p1),
    each without bias + BatchNorm + ReLU.

    With `return_skips=True` the call returns `(f_p, skips)`, where skips maps a side length
    to the encoder's feature map of that size: {64: (B, 64, 64, 64), 32: (B, 32, 32, 128)}
    (for decoders with U-Net skip connections, Ronneberger et al. 2015).
    """

    width: float = 1.0
    return_skips: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image: jax.Array, train: bool):
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        skips = {}
        # flax's "REFLECT" padding is jnp.pad(mode="reflect") by k // 2 followed by VALID.
        x = ConvBlock(
            scale_width(64, self.width), (7, 7), padding="REFLECT", **common, name="conv_1"
        )(image, train)
        skips[x.shape[1]] = x
        x = ConvBlock(scale_width(128, self.width), (3, 3), 2, **common, name="conv_2")(x, train)
        skips[x.shape[1]] = x
        x = ConvBlock(scale_width(256, self.width), (3, 3), 2, **common, name="conv_3")(x, train)
        return (x, skips) if self.return_skips else x
