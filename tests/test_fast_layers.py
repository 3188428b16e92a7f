"""The fast implementations of the paper's layers compute the reference function exactly:
the sub-pixel decomposition of the transposed up-sampling convolution, 3D convolutions as
2D taps, "auto" per backend, and rematerialised residual blocks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lipjax.models import Generator
from lipjax.models.layers import (
    FASTEST_IMPLS,
    NARROW_OUTPUT_FEATURES,
    TransposedUpsampleConv,
    UpsampleBlock,
    conv3d_as_2d_taps,
    he_normal,
    resolve_impl,
    transposed_as_subpixel,
)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def reference_transposed(x, kernel):
    """The paper's up-sampling convolution as `lax.conv_transpose` (the reference)."""
    lead = x.ndim - 4
    return lax.conv_transpose(x, kernel, (1,) * lead + (2, 2), ((1, 1),) * lead + ((1, 2), (1, 2)))


def old_transposed_layer(features, spatial_dims):
    """The layer the checkpoints so far were written with: flax's nn.ConvTranspose."""
    lead = spatial_dims - 2
    return nn.ConvTranspose(
        features,
        (3,) * spatial_dims,
        strides=(1,) * lead + (2, 2),
        padding=((1, 1),) * lead + ((1, 2), (1, 2)),
        use_bias=False,
        kernel_init=he_normal,
    )


@pytest.mark.parametrize("conv3d_impl", ["native", "taps"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6, 4), (2, 5, 6, 4)])
def test_subpixel_decomposition_equals_conv_transpose(shape, conv3d_impl):
    x = jax.random.normal(jax.random.key(0), shape)
    kernel = jax.random.normal(jax.random.key(1), (3,) * (len(shape) - 2) + (4, 3))
    cotangent = jax.random.normal(jax.random.key(2), reference_transposed(x, kernel).shape)

    def loss(function):
        return lambda x, k: jnp.sum(function(x, k) * cotangent)

    fast = lambda x, k: transposed_as_subpixel(x, k, conv3d_impl)  # noqa: E731
    np.testing.assert_allclose(fast(x, kernel), reference_transposed(x, kernel), **TOLERANCE)
    expected = jax.grad(loss(reference_transposed), argnums=(0, 1))(x, kernel)
    got = jax.grad(loss(fast), argnums=(0, 1))(x, kernel)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, **TOLERANCE)


# (kernel, out_features): narrow outputs, a small kernel (both take the matrix-product kernel
# gradient), and neither (XLA's).
@pytest.mark.parametrize(
    "kernel_size, out_features",
    [
        ((7, 5, 3), 3),
        ((3, 2, 2), NARROW_OUTPUT_FEATURES + 1),
        ((7, 5, 3), NARROW_OUTPUT_FEATURES + 1),
    ],
)
@pytest.mark.parametrize("padding", [((3, 3), (2, 2), (1, 1)), ((0, 2), (1, 0), (0, 1))])
def test_taps_equal_native_conv3d_with_gradients(padding, kernel_size, out_features):
    """conv3d_as_2d_taps (with its matrix-product kernel gradient for narrow outputs) is the
    native 3D convolution: values and both gradients."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 7, 4))
    kernel = jax.random.normal(jax.random.key(1), (*kernel_size, 4, out_features))

    def native(x, k):
        dimension_numbers = ("NDHWC", "DHWIO", "NDHWC")
        return lax.conv_general_dilated(
            x, k, (1, 1, 1), padding, dimension_numbers=dimension_numbers
        )

    def taps(x, k):
        return conv3d_as_2d_taps(x, k, (1, 1, 1), padding)

    cotangent = jax.random.normal(jax.random.key(2), native(x, kernel).shape)
    np.testing.assert_allclose(taps(x, kernel), native(x, kernel), **TOLERANCE)
    expected = jax.grad(lambda x, k: jnp.sum(native(x, k) * cotangent), argnums=(0, 1))(x, kernel)
    got = jax.grad(lambda x, k: jnp.sum(taps(x, k) * cotangent), argnums=(0, 1))(x, kernel)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-4)


def test_subpixel_decomposition_rejects_other_kernels():
    with pytest.raises(ValueError, match="3x3 kernel"):
        transposed_as_subpixel(jnp.zeros((1, 4, 4, 2)), jnp.zeros((2, 2, 2, 1)))


@pytest.mark.parametrize("impl", ["native", "phases", "auto"])
@pytest.mark.parametrize("shape", [(1, 3, 4, 4, 5), (1, 4, 4, 5)])
def test_old_checkpoints_load_unchanged(shape, impl):
    """nn.ConvTranspose's variables (old checkpoints) have our layer's structure and
    initial values, and give the same output through every implementation."""
    x = jax.random.normal(jax.random.key(0), shape)
    old = old_transposed_layer(3, len(shape) - 2)
    old_variables = old.init(jax.random.key(1), x)
    layer = TransposedUpsampleConv(3, impl, "taps")
    new_variables = layer.init(jax.random.key(1), x)
    assert jax.tree.structure(new_variables) == jax.tree.structure(old_variables)
    np.testing.assert_array_equal(
        new_variables["params"]["kernel"], old_variables["params"]["kernel"]
    )
    np.testing.assert_allclose(
        layer.apply(old_variables, x), old.apply(old_variables, x), **TOLERANCE
    )


def test_upsample_block_variables_do_not_depend_on_impl():
    x = jnp.ones((1, 2, 4, 4, 6))
    trees = [
        UpsampleBlock(3, upsample_impl=impl).init(jax.random.key(0), x, train=False)
        for impl in ("native", "phases")
    ]
    assert jax.tree.structure(trees[0]) == jax.tree.structure(trees[1])
    for a, b in zip(jax.tree.leaves(trees[0]), jax.tree.leaves(trees[1]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_auto_picks_per_backend():
    assert resolve_impl("conv3d_impl", "auto", "cpu") == "taps"
    assert resolve_impl("upsample_impl", "auto", "cpu") == "phases"
    assert resolve_impl("conv3d_impl", "auto", "gpu") == "native"
    assert resolve_impl("upsample_impl", "auto", "gpu") == "phases"
    assert resolve_impl("conv3d_impl", "auto", "tpu") == "native"
    assert resolve_impl("upsample_impl", "auto", "tpu") == "native"
    for backend in ("cpu", "gpu"):  # explicit choices are kept whatever the backend
        assert resolve_impl("conv3d_impl", "native", backend) == "native"
        assert resolve_impl("upsample_impl", "native", backend) == "native"
    # Without a backend: the default one, which a jitted step runs on.
    assert (
        resolve_impl("upsample_impl", "auto")
        == FASTEST_IMPLS.get(jax.default_backend(), {"upsample_impl": "native"})["upsample_impl"]
    )
    with pytest.raises(ValueError, match="upsample_impl must be one of"):
        resolve_impl("upsample_impl", "fast")
    with pytest.raises(ValueError, match="conv3d_impl must be one of"):
        resolve_impl("conv3d_impl", "phases")


def tiny_generator(**fields):
    return Generator(width=0.0625, num_residual_blocks=2, output_kernel=3, **fields)


def generator_loss_and_grads(generator, variables, audio, identity):
    # Eval mode: BatchNorm on its running averages. With batch statistics at these tiny
    # sizes the gradients cancel so strongly that float32 summation order alone (which XLA
    # changes with --xla_force_host_platform_device_count, set in conftest) moves them.
    def loss(params):
        video, features = generator.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            audio,
            identity,
            train=False,
        )
        weights = jnp.cos(jnp.arange(video.size, dtype=jnp.float32).reshape(video.shape))
        return jnp.sum(video * weights) + jnp.sum(features)

    return jax.value_and_grad(loss)(variables["params"])


@pytest.fixture(scope="module")
def reference_generator():
    """Inputs, the reference generator's variables, outputs and gradients (computed once)."""
    audio = jax.random.normal(jax.random.key(0), (1, 16, 128, 1))
    identity = jax.random.uniform(jax.random.key(1), (1, 64, 64, 3), minval=-1, maxval=1)
    reference = tiny_generator(conv3d_impl="native", upsample_impl="native")
    variables = reference.init(jax.random.key(2), audio, identity, train=False)
    outputs = reference.apply(variables, audio, identity, train=False)
    loss_and_grads = generator_loss_and_grads(reference, variables, audio, identity)
    return audio, identity, variables, outputs, loss_and_grads


@pytest.mark.parametrize(
    "fields",
    [
        {"conv3d_impl": "taps", "upsample_impl": "phases"},
        {"conv3d_impl": "auto", "upsample_impl": "auto"},
        {"conv3d_impl": "native", "upsample_impl": "native", "remat": True},
    ],
)
def test_fast_generator_equals_the_reference(reference_generator, fields):
    """The paper's generator, computed the fast way, with the reference's variables: the
    same variables tree, outputs and parameter gradients."""
    audio, identity, variables, expected, (expected_loss, expected_grads) = reference_generator
    fast = tiny_generator(**fields)
    fast_variables = fast.init(jax.random.key(2), audio, identity, train=False)
    assert jax.tree.structure(fast_variables) == jax.tree.structure(variables)

    got = fast.apply(variables, audio, identity, train=False)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, **TOLERANCE)
    got_loss, got_grads = generator_loss_and_grads(fast, variables, audio, identity)
    np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-5)
    for g, e in zip(jax.tree.leaves(got_grads), jax.tree.leaves(expected_grads), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(e))))
