"""A lip-sync expert in the manner of SyncNet (Chung & Zisserman, "Out of time: automated
lip sync in the wild", ACCV workshops 2016): two encoders map 5 video frames of lips and
the matching 0.2 s of speech to unit vectors that lie close together when the two are in
sync. The distance between the embeddings over a range of audio offsets gives LSE-D,
LSE-C and the audio-visual offset (lipjax.eval.lip_sync).

Inputs, channels last:
  lips  (N, 32, 32, 5): 5 consecutive grey frames in [-1, 1], stacked as channels (SyncNet
        stacks its frames the same way), from 64 x 64 crops halved (`lip_windows`);
  audio (N, 20, 128, 1): the normalised log-mel of those 5 frames (4 mel frames each).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

WINDOW_FRAMES = 5  # video frames seen at once (0.2 s at 25 fps)
MELS_PER_FRAME = 4
WINDOW_MELS = WINDOW_FRAMES * MELS_PER_FRAME
LIP_SIZE = 32  # the 64 x 64 crop, halved
NUM_MEL_BANDS = 128
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def _conv_block(x: jax.Array, features: int, strides: tuple[int, int], name: str) -> jax.Array:
    x = nn.Conv(features, (3, 3), strides, padding=1, use_bias=False, name=name)(x)
    x = nn.GroupNorm(num_groups=4, name=f"{name}_norm")(x)
    return nn.relu(x)


class LipEncoder(nn.Module):
    """(N, 32, 32, 5) stacked grey lip frames -> (N, embedding) unit vectors."""

    features: Sequence[int] = (16, 32, 32, 64, 64)
    strides: Sequence[int] = (1, 2, 1, 2, 2)
    embedding: int = 64

    @nn.compact
    def __call__(self, lips: jax.Array) -> jax.Array:
        x = lips
        for index, (width, stride) in enumerate(zip(self.features, self.strides, strict=True)):
            x = _conv_block(x, width, (stride, stride), f"conv{index}")
        x = nn.Dense(self.embedding, name="embed")(x.reshape(x.shape[0], -1))
        return _unit(x)


class SpeechEncoder(nn.Module):
    """(N, 20, 128, 1) log-mel windows -> (N, embedding) unit vectors. Strides halve the mel
    axis more often than time, which is short (20 frames)."""

    features: Sequence[int] = (8, 16, 32, 48, 64)
    strides: Sequence[tuple[int, int]] = ((1, 2), (2, 2), (1, 2), (2, 2), (1, 2))
    embedding: int = 64

    @nn.compact
    def __call__(self, audio: jax.Array) -> jax.Array:
        x = audio
        for index, (width, stride) in enumerate(zip(self.features, self.strides, strict=True)):
            x = _conv_block(x, width, tuple(stride), f"conv{index}")
        x = nn.Dense(self.embedding, name="embed")(x.reshape(x.shape[0], -1))
        return _unit(x)


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-12)


class SyncExpert(nn.Module):
    """The two encoders; `embed_lips` and `embed_audio` run one of them alone."""

    lip_features: Sequence[int] = (16, 32, 32, 64, 64)
    speech_features: Sequence[int] = (8, 16, 32, 48, 64)
    embedding: int = 64

    def setup(self):
        self.lips = LipEncoder(features=self.lip_features, embedding=self.embedding)
        self.speech = SpeechEncoder(features=self.speech_features, embedding=self.embedding)

    def __call__(self, lips: jax.Array, audio: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.lips(lips), self.speech(audio)

    def embed_lips(self, lips: jax.Array) -> jax.Array:
        return self.lips(lips)

    def embed_audio(self, audio: jax.Array) -> jax.Array:
        return self.speech(audio)


def grey_lips(frames: jax.Array) -> jax.Array:
    """Lip crops (..., 64, 64, 3) in [-1, 1] -> grey (..., 32, 32) in [-1, 1], by the BT.601
    luma and 2 x 2 averaging."""
    grey = jnp.tensordot(frames.astype(jnp.float32), jnp.asarray(_LUMA), axes=([-1], [0]))
    *lead, height, width = grey.shape
    return grey.reshape(*lead, height // 2, 2, width // 2, 2).mean(axis=(-3, -1))


def lip_windows(grey: jax.Array) -> jax.Array:
    """Grey frames (..., T, 32, 32) -> every run of 5 frames (..., T - 4, 32, 32, 5)."""
    count = grey.shape[-3] - WINDOW_FRAMES + 1
    return jnp.stack([grey[..., k : k + count, :, :] for k in range(WINDOW_FRAMES)], axis=-1)


def audio_windows(log_mel: jax.Array) -> jax.Array:
    """Normalised log-mel (..., 4 T, 128) -> the 20 mel frames of every run of 5 video frames,
    one per video frame (hop 4): (..., T - 4, 20, 128, 1)."""
    frames = log_mel.shape[-2] // MELS_PER_FRAME
    count = frames - WINDOW_FRAMES + 1
    starts = MELS_PER_FRAME * jnp.arange(count)
    index = starts[:, None] + jnp.arange(WINDOW_MELS)[None, :]
    return jnp.take(log_mel, index, axis=-2)[..., None]
