"""Identity (image) encoder of the generator (paper Sec. 3.1; SPEC "Generator")."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import ConvBlock, Dtype, scale_width


class IdentityEncoder(nn.Module):
    """Identity image p_r (B, 64, 64, 3) -> image features f_p (B, 16, 16, 256).

    7x7 conv 3->64 with reflection padding 3, then 3x3 s2 64->128 and 3x3 s2 128->256 (p1),
    each without bias + BatchNorm + ReLU.
    """

    width: float = 1.0
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, image: jax.Array, train: bool) -> jax.Array:
        common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
        # flax's "REFLECT" padding is jnp.pad(mode="reflect") by k // 2 followed by VALID.
        x = ConvBlock(
            scale_width(64, self.width), (7, 7), padding="REFLECT", **common, name="conv_1"
        )(image, train)
        x = ConvBlock(scale_width(128, self.width), (3, 3), 2, **common, name="conv_2")(x, train)
        return ConvBlock(scale_width(256, self.width), (3, 3), 2, **common, name="conv_3")(x, train)
