"""The losses of the paper (Sec. 3.2, 4; Eq. 1-4), in float32 whatever the compute dtype."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lipjax.models import correlation_loss, perceptual_loss

__all__ = [
    "correlation_loss",
    "discriminator_loss",
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
