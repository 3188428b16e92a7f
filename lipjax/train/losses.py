"""The losses of the paper (Sec. 3.2, 4; Eq. 1-4), in float32 whatever the compute dtype."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lipjax.models import correlation_loss, perceptual_loss
from lipjax.models.sync_expert import SyncExpert, audio_windows, grey_lips, lip_windows

__all__ = [
    "correlation_loss",
    "discriminator_loss",
    "expert_sync_loss",
    "generator_adversarial_loss",
    "perceptual_loss",
    "pixel_loss",
]


def pixel_loss(fake: jax.Array, real: jax.Array) -> jax.Array:
    """l_pix = mean |v - v_hat| (L1, paper Sec. 4)."""
    return jnp.mean(jnp.abs(fake.astype(jnp.float32) - real.astype(jnp.float32)))


def generator_adversarial_loss(fake_logits: jax.Array) -> jax.Array:
    """l_gen = -log D(s, v_hat), from logits: softplus(-logit) = -log sigmoid(logit)."""
    return jnp.mean(jax.nn.softplus(-fake_logits.astype(jnp.float32)))


def discriminator_loss(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    mismatch_logits: jax.Array | None,
    fake_weight: float = 0.5,
    mismatch_weight: float = 0.5,
) -> jax.Array:
    """L_D = -log D(s, v) - λp log(1 - D(s, v_hat)) - λu log(1 - D(s_k, v)) (paper Eq. 4).

    -log(1 - sigmoid(x)) = softplus(x). Without mismatched audio the last term is dropped.
    """
    loss = jnp.mean(jax.nn.softplus(-real_logits.astype(jnp.float32)))
    loss += fake_weight * jnp.mean(jax.nn.softplus(fake_logits.astype(jnp.float32)))
    if mismatch_logits is not None:
        loss += mismatch_weight * jnp.mean(jax.nn.softplus(mismatch_logits.astype(jnp.float32)))
    return loss


def expert_sync_loss(
    expert: SyncExpert, variables, video: jax.Array, log_mel: jax.Array
) -> jax.Array:
    """Expert lip-sync loss (Prajwal et al. 2020): for every run of 5 frames of `video`
    (B, T, 64, 64, 3) in [-1, 1], -log of the in-sync probability (1 + cos) / 2 between the
    frozen expert's embeddings of those lips and of the matching 20 mel frames of `log_mel`
    (B, 4T, 128, 1), averaged. Unit embeddings: 0 when they coincide, log 2 when orthogonal.
    """
    lips = lip_windows(grey_lips(video))  # (B, T - 4, 32, 32, 5)
    audio = audio_windows(log_mel[..., 0].astype(jnp.float32))  # (B, T - 4, 20, 128, 1)
    lip_embeddings = expert.apply(
        variables, lips.reshape(-1, *lips.shape[2:]), method=SyncExpert.embed_lips
    )
    audio_embeddings = expert.apply(
        variables, audio.reshape(-1, *audio.shape[2:]), method=SyncExpert.embed_audio
    )
    cosine = jnp.sum(lip_embeddings * jax.lax.stop_gradient(audio_embeddings), axis=-1)
    return jnp.mean(-jnp.log((1.0 + cosine) / 2.0 + 1e-6))
