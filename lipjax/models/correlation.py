"""Audio-visual (derivative) correlation networks and loss (paper Sec. 3.2;
docs/design.md, "Correlation networks and loss").

Both networks keep the time axis and reduce everything else, giving one vector of T' = 15
values per example; l_corr is one minus their cosine.

Non-derivative ablation (paper Tab. 2 (f), `derivative=False`): phi_s reads f_s itself and
phi_v the video frames. Both inputs have 16 time steps; we drop the LAST step before the
convolutions (f_s[:, :15], frames[:, :15]) so that the outputs keep the derivative variant's
length 15 and the two variants are compared on equal terms. (A learned kernel-2 temporal
convolution was rejected: it could learn the difference and undo the ablation.)
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lipjax.models.layers import ConvBlock, Dtype, safe_norm, scale_width

AUDIO_DERIVATIVE_CHANNELS = (128, 64, 32, 16)
FLOW_ENCODER_CHANNELS = (4, 8, 16, 16)


class AudioDerivativeNet(nn.Module):
    """phi_s: audio features f_s (B, T, F, C) -> (B, T - 1).

    Temporal difference f_s[:, 1:] - f_s[:, :-1] (or, with `derivative=False`, f_s[:, :-1]),
    then four 2D convolutions over (time, frequency), k3 p1 stride (1, 2),
    C->128->64->32->16 (+ BN + ReLU), then the mean over frequency and channels.
    """

    width: float = 1.0
    derivative: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, audio_features: jax.Array, train: bool) -> jax.Array:
        if self.derivative:
            x = audio_features[:, 1:] - audio_features[:, :-1]
        else:
            x = audio_features[:, :-1]
        for index, channels in enumerate(AUDIO_DERIVATIVE_CHANNELS):
            x = ConvBlock(
                scale_width(channels, self.width),
                (3, 3),
                (1, 2),
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"conv_{index + 1}",
            )(x, train)
        return jnp.mean(x, axis=(2, 3))


class FlowEncoder(nn.Module):
    """phi_v: optical flows (B, T - 1, 16, 16, 2) -> (B, T - 1).

    Four 3D convolutions, k3 p1 stride (1, 2, 2), 2->4->8->16->16 (+ BN + ReLU), then the mean
    over H, W and channels. With `derivative=False` it reads the frames (B, T, 64, 64, 3)
    instead and drops the last one (see the module docstring).
    """

    width: float = 1.0
    derivative: bool = True
    conv3d_impl: str = "native"
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, flows_or_frames: jax.Array, train: bool) -> jax.Array:
        x = flows_or_frames if self.derivative else flows_or_frames[:, :-1]
        for index, channels in enumerate(FLOW_ENCODER_CHANNELS):
            x = ConvBlock(
                scale_width(channels, self.width),
                (3, 3, 3),
                (1, 2, 2),
                conv3d_impl=self.conv3d_impl,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"conv_{index + 1}",
            )(x, train)
        return jnp.mean(x, axis=(2, 3, 4))


def correlation_loss(audio_vector: jax.Array, visual_vector: jax.Array, eps: float = 1e-8):
    """l_corr = mean over the batch of 1 - a.b / (|a| |b| + eps) (paper Eq. 1), in float32.

    Inputs (B, T'); a zero vector gives cosine 0 (loss 1) with finite gradients.
    """
    a = audio_vector.astype(jnp.float32)
    b = visual_vector.astype(jnp.float32)
    cosine = jnp.sum(a * b, axis=-1) / (safe_norm(a) * safe_norm(b) + eps)
    return jnp.mean(1.0 - cosine)
