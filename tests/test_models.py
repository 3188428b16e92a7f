"""Shapes, dtypes and gradient flow of the lipjax networks (small widths, CPU).

The 8-device CPU set-up comes from tests/conftest.py.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lipjax import configs
from lipjax.models import (
    MULTISCALE_WEIGHTS,
    AudioDerivativeNet,
    AudioEncoder,
    Discriminator,
    FlowEncoder,
    FlowNetS,
    Generator,
    IdentityEncoder,
    PerceptualAutoencoder,
    build_generator,
    correlation_loss,
    fuse_audio_identity,
    fuse_code_identity,
    multiscale_epe,
    perceptual_loss,
    video_flows,
    warp_image,
)
from lipjax.models.layers import UpsampleBlock, depth_to_space, make_conv

WIDTH = 0.125
BATCH = 2


# Test data come from numpy: jax's default (threefry) random numbers compile slowly on CPU.
def normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32))


def uniform(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32))


SPECTROGRAM = normal(1, (BATCH, 64, 128, 1))
IMAGE = uniform(2, (BATCH, 64, 64, 3))
VIDEO = uniform(3, (BATCH, 16, 64, 64, 3))
FLOWS = normal(4, (BATCH, 15, 16, 16, 2))
# The generator works for any number of frames T (4 mel frames each); its computing tests use
# T = 4 to stay fast, the paper-size test checks T = 16 by shape.
SHORT_SPECTROGRAM = SPECTROGRAM[:, :16]


def init(model, *args, **kwargs):
    """Variables shaped by `model.init` (traced, not run) and filled from numpy: kernels
    He-normal, biases 0, BatchNorm scale and running variance 1.

    Running `model.init` compiles its random initialisers, about 5 s per network on this CPU;
    the real initialisers are checked once, in `test_he_initialisation`.
    """
    shapes = jax.eval_shape(lambda *a: model.init(jax.random.PRNGKey(0), *a, **kwargs), *args)
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("scale", "var"):
            return jnp.ones(leaf.shape, leaf.dtype)
        if name in ("bias", "mean"):
            return jnp.zeros(leaf.shape, leaf.dtype)
        std = math.sqrt(2.0 / math.prod(leaf.shape[:-1]))
        return jnp.asarray(rng.standard_normal(leaf.shape) * std, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def train_step_outputs(model, variables, *args, **kwargs):
    """Runs the model in training mode and returns its outputs, after checking that a random
    projection of all outputs (a plain sum would cancel through BatchNorm) gives every
    parameter leaf a finite, not identically zero gradient."""
    has_batch_stats = "batch_stats" in variables
    others = {k: v for k, v in variables.items() if k != "params"}

    def forward(params):
        result = model.apply(
            {"params": params, **others},
            *args,
            **kwargs,
            mutable=["batch_stats"] if has_batch_stats else False,
        )
        return result[0] if has_batch_stats else result

    output_shapes = jax.tree_util.tree_leaves(jax.eval_shape(forward, variables["params"]))
    projections = [normal(100 + i, out.shape) for i, out in enumerate(output_shapes)]

    def loss(params, projections):
        outputs = forward(params)
        total = 0.0
        for output, projection in zip(jax.tree_util.tree_leaves(outputs), projections, strict=True):
            total = total + jnp.sum(output.astype(jnp.float32) * projection)
        return total, outputs

    grads, outputs = jax.jit(jax.grad(loss, has_aux=True))(variables["params"], projections)
    flat = jax.tree_util.tree_flatten_with_path(grads)[0]
    assert flat
    for path, grad in flat:
        name = jax.tree_util.keystr(path)
        assert bool(jnp.all(jnp.isfinite(grad))), f"non-finite gradient for {name}"
        assert bool(jnp.any(grad != 0)), f"zero gradient for {name}"
    return outputs


def assert_param_dtypes(variables, dtype=jnp.float32):
    for leaf in jax.tree_util.tree_leaves(variables):
        assert leaf.dtype == dtype


# ---------------------------------------------------------------- shared layers


@pytest.mark.parametrize(
    ("kernel_size", "strides", "padding", "shape"),
    [
        ((7, 7, 7), 1, None, (2, 9, 12, 12, 4)),
        ((4, 4, 4), 2, ((1, 1),) * 3, (2, 8, 16, 16, 3)),
        ((3, 8, 8), (2, 8, 8), ((1, 1), (0, 0), (0, 0)), (2, 15, 32, 32, 3)),
        ((1, 3, 3), 1, "SAME", (2, 4, 8, 8, 4)),
    ],
)
def test_conv3d_taps_matches_native(kernel_size, strides, padding, shape):
    x = normal(0, shape)
    native = make_conv(5, kernel_size, strides, padding)
    taps = make_conv(5, kernel_size, strides, padding, conv3d_impl="taps")
    variables = init(native, x)
    outputs = jax.jit(lambda v, x: (native.apply(v, x), taps.apply(v, x)))(variables, x)
    np.testing.assert_allclose(*outputs, atol=1e-4)


def test_he_initialisation():
    model = IdentityEncoder(width=WIDTH)
    variables = jax.jit(lambda x: model.init(jax.random.key(0, impl="rbg"), x, False))(IMAGE)
    kernel = variables["params"]["conv_1"]["conv"]["kernel"]
    assert kernel.shape == (7, 7, 3, 8)
    assert float(jnp.std(kernel)) == pytest.approx(math.sqrt(2.0 / (7 * 7 * 3)), rel=0.1)
    assert "bias" not in variables["params"]["conv_1"]["conv"]  # BatchNorm follows
    stats = variables["batch_stats"]["conv_1"]["norm"]
    np.testing.assert_array_equal(stats["var"], 1.0)


def test_depth_to_space_layout():
    x = jnp.arange(2 * 3 * 3 * 8).reshape(2, 3, 3, 8)
    y = depth_to_space(x, 2)
    assert y.shape == (2, 6, 6, 2)
    # y[n, 2h + dy, 2w + dx, c] == x[n, h, w, (2 dy + dx) * C + c]
    expected = x.reshape(2, 3, 3, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 6, 2)
    np.testing.assert_array_equal(y, expected)
    assert y[1, 2 * 1 + 1, 2 * 2 + 0, 1] == x[1, 1, 2, (2 * 1 + 0) * 2 + 1]


# ---------------------------------------------------------------- encoders


def test_audio_encoder():
    model = AudioEncoder(width=WIDTH)
    variables = init(model, SPECTROGRAM, train=False)
    out = train_step_outputs(model, variables, SPECTROGRAM, train=True)
    assert out.shape == (BATCH, 16, 16, 32)


def test_identity_encoder():
    model = IdentityEncoder(width=WIDTH)
    variables = init(model, IMAGE, train=False)
    assert train_step_outputs(model, variables, IMAGE, train=True).shape == (BATCH, 16, 16, 32)


def test_encoders_paper_size_shapes():
    for model, x in [(AudioEncoder(), SPECTROGRAM), (IdentityEncoder(), IMAGE)]:
        variables = jax.eval_shape(lambda x, m=model: m.init(jax.random.PRNGKey(0), x, False), x)
        out = jax.eval_shape(lambda v, x, m=model: m.apply(v, x, False), variables, x)
        assert out.shape == (BATCH, 16, 16, 256)


# ---------------------------------------------------------------- generator


def test_fusion_layout():
    audio = normal(0, (2, 16, 16, 3))
    image = normal(1, (2, 16, 16, 5))
    fused = fuse_audio_identity(audio, image)
    assert fused.shape == (2, 16, 16, 16, 8)
    # Audio frequency along W, duplicated along H; image repeated over time.
    np.testing.assert_array_equal(fused[:, 4, 7, :, :3], audio[:, 4])
    np.testing.assert_array_equal(fused[:, 9, :, :, 3:], image)
    # The authors' layout: frequency along H, duplicated along W.
    authors = fuse_audio_identity(audio, image, frequency_axis="height")
    np.testing.assert_array_equal(authors[:, 4, :, 7, :3], audio[:, 4])
    np.testing.assert_array_equal(authors[:, 9, :, :, 3:], image)
    with pytest.raises(ValueError, match="audio_frequency_axis"):
        fuse_audio_identity(audio, image, frequency_axis="depth")


def test_frequency_axis_changes_the_function_not_the_parameters():
    config = {"width": WIDTH, "generator_residual_blocks": 1, "upsample": "subpixel"}
    spectrogram = normal(0, (1, 64, 128, 1))
    identity = normal(1, (1, 64, 64, 3))
    outputs, shapes = [], []
    for axis in ("width", "height"):
        module = build_generator({**config, "audio_frequency_axis": axis})
        variables = module.init(jax.random.key(0), spectrogram, identity, train=False)
        shapes.append(jax.tree.map(jnp.shape, variables))
        outputs.append(module.apply(variables, spectrogram, identity, train=False)[0])
    assert shapes[0] == shapes[1]
    assert not np.allclose(outputs[0], outputs[1])
    # A model record without the field (weights trained before it existed) keeps "width".
    assert build_generator(config).audio_frequency_axis == "width"


def test_dense_fusion_layout():
    code = normal(0, (2, 16, 3))
    image = normal(1, (2, 16, 16, 5))
    fused = fuse_code_identity(code, image)
    assert fused.shape == (2, 16, 16, 16, 8)
    # Each frame's code at every pixel; the image repeated over time.
    np.testing.assert_array_equal(fused[:, 4, 7, 11, :3], code[:, 4])
    np.testing.assert_array_equal(fused[:, 4, 0, 0, :3], code[:, 4])
    np.testing.assert_array_equal(fused[:, 9, :, :, 3:], image)


def test_generator_paper_size_shapes():
    spectrogram = jax.ShapeDtypeStruct((24, 64, 128, 1), jnp.float32)
    image = jax.ShapeDtypeStruct((24, 64, 64, 3), jnp.float32)
    for upsample in ("transposed", "subpixel"):
        model = Generator(upsample=upsample)
        variables = jax.eval_shape(
            lambda s, i, m=model: m.init(jax.random.PRNGKey(0), s, i, False), spectrogram, image
        )
        video, audio_features = jax.eval_shape(
            lambda v, s, i, m=model: m.apply(v, s, i, False), variables, spectrogram, image
        )
        assert video.shape == (24, 16, 64, 64, 3)
        assert audio_features.shape == (24, 16, 16, 256)
        params = variables["params"]
        assert sum(1 for k in params if k.startswith("residual_")) == 9
        assert params["fusion"]["conv"]["kernel"].shape == (3, 3, 3, 512, 256)
        assert params["residual_9"]["conv_2"]["conv"]["kernel"].shape == (1, 3, 3, 256, 256)
        assert params["up_2"]["conv"]["kernel"].shape[-1] == (
            64 if upsample == "transposed" else 256
        )
        assert params["to_rgb"]["kernel"].shape == (7, 7, 7, 64, 3)


@pytest.mark.parametrize(("upsample", "identity_skip"), [("subpixel", False), ("transposed", True)])
def test_generator_forward_and_gradients(upsample, identity_skip):
    model = Generator(
        width=WIDTH,
        num_residual_blocks=1,
        upsample=upsample,
        identity_skip=identity_skip,
        conv3d_impl="taps",
    )
    variables = init(model, SHORT_SPECTROGRAM, IMAGE, train=False)
    video, audio_features = train_step_outputs(
        model, variables, SHORT_SPECTROGRAM, IMAGE, train=True
    )
    assert video.shape == (BATCH, 4, 64, 64, 3)
    assert audio_features.shape == (BATCH, 4, 16, 32)
    assert video.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(video))) <= 1.0

    if identity_skip:
        # The module's own initialisation zeroes the last convolution, and zero decoder
        # logits reproduce the identity image in every frame: training starts at the static
        # baseline.
        variables = model.init(jax.random.PRNGKey(1), SHORT_SPECTROGRAM, IMAGE, train=False)
        assert not np.any(variables["params"]["to_rgb"]["kernel"])
    generate = jax.jit(lambda v: model.apply(v, SHORT_SPECTROGRAM, IMAGE, train=False))
    video, _ = generate(variables)
    assert video.shape == (BATCH, 4, 64, 64, 3)
    if identity_skip:
        expected = jnp.broadcast_to(jnp.clip(IMAGE, -0.999, 0.999)[:, None], video.shape)
        np.testing.assert_allclose(video, expected, atol=1e-5)


def test_generator_audio_width_widens_the_audio_encoder_only():
    narrow = Generator(width=WIDTH, num_residual_blocks=1, conv3d_impl="taps")
    wide = Generator(width=WIDTH, num_residual_blocks=1, conv3d_impl="taps", audio_width=0.5)
    narrow_params = init(narrow, SHORT_SPECTROGRAM, IMAGE, train=False)["params"]
    wide_params = init(wide, SHORT_SPECTROGRAM, IMAGE, train=False)["params"]
    assert wide_params["audio_encoder"]["conv_5"]["conv"]["kernel"].shape[-1] == 128
    for name in ("identity_encoder", "residual_1", "up_1", "up_2", "to_rgb"):
        shapes = [x.shape for x in jax.tree.leaves(narrow_params[name])]
        assert shapes == [x.shape for x in jax.tree.leaves(wide_params[name])], name
    # The fusion convolution takes the wider audio features beside the identity's.
    fusion_in = wide_params["fusion"]["conv"]["kernel"].shape[-2]
    assert fusion_in == narrow_params["fusion"]["conv"]["kernel"].shape[-2] + 128 - 32
    _, audio_features = wide.apply(
        init(wide, SHORT_SPECTROGRAM, IMAGE, train=False), SHORT_SPECTROGRAM, IMAGE, train=False
    )
    assert audio_features.shape == (BATCH, 4, 16, 128)


def test_generator_bfloat16_matches_float32():
    """bfloat16 compute: float32 parameters, bfloat16 outputs close to the float32 ones."""
    kwargs = {"width": WIDTH, "num_residual_blocks": 1, "upsample": "subpixel"}
    model_32 = Generator(**kwargs)
    model_16 = Generator(**kwargs, dtype=jnp.bfloat16)
    variables = init(model_32, SHORT_SPECTROGRAM, IMAGE, train=False)
    assert_param_dtypes(variables)
    video_32, _ = jax.jit(lambda v: model_32.apply(v, SHORT_SPECTROGRAM, IMAGE, train=False))(
        variables
    )
    video_16, audio_16 = jax.jit(
        lambda v: model_16.apply(v, SHORT_SPECTROGRAM, IMAGE, train=False)
    )(variables)
    assert video_16.dtype == audio_16.dtype == jnp.bfloat16
    assert video_16.shape == (BATCH, 4, 64, 64, 3)
    np.testing.assert_allclose(video_16.astype(jnp.float32), video_32, atol=0.1)


# ---------------------------------------------------------------- correlation


def test_correlation_loss_known_values():
    a = jnp.array([[1.0, 2.0, 3.0]])
    assert float(correlation_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    assert float(correlation_loss(a, -a)) == pytest.approx(2.0, abs=1e-6)
    orthogonal = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 5.0]])
    assert float(correlation_loss(*orthogonal)) == pytest.approx(1.0, abs=1e-6)
    # Mean over the batch.
    batch = jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.array([[1.0, 0.0], [-1.0, 0.0]])
    assert float(correlation_loss(*batch)) == pytest.approx(1.0, abs=1e-6)
    zero = jnp.zeros((2, 15))
    value, grads = jax.value_and_grad(correlation_loss, argnums=(0, 1))(zero, normal(0, (2, 15)))
    assert float(value) == pytest.approx(1.0)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


@pytest.mark.parametrize("derivative", [True, False])
def test_correlation_networks(derivative):
    audio_features = normal(5, (BATCH, 16, 16, 32))
    visual = FLOWS if derivative else VIDEO
    phi_s = AudioDerivativeNet(width=WIDTH, derivative=derivative)
    phi_v = FlowEncoder(width=WIDTH, derivative=derivative)
    vars_s = init(phi_s, audio_features, train=False)
    vars_v = init(phi_v, visual, train=False)
    out_s = train_step_outputs(phi_s, vars_s, audio_features, train=True)
    out_v = train_step_outputs(phi_v, vars_v, visual, train=True)
    assert out_s.shape == out_v.shape == (BATCH, 15)
    assert np.isfinite(float(correlation_loss(out_s, out_v)))


def test_correlation_networks_bfloat16():
    phi_s = AudioDerivativeNet(dtype=jnp.bfloat16)
    f_s = jax.ShapeDtypeStruct((24, 16, 16, 256), jnp.bfloat16)
    variables = jax.eval_shape(lambda x: phi_s.init(jax.random.PRNGKey(0), x, False), f_s)
    assert_param_dtypes(variables)
    out = jax.eval_shape(lambda v, x: phi_s.apply(v, x, False), variables, f_s)
    assert out.shape == (24, 15) and out.dtype == jnp.bfloat16


# ---------------------------------------------------------------- FlowNetS


def test_flownet_scales_and_gradients():
    model = FlowNetS(width=WIDTH)
    # Frames 3 and 4 of the test video, the pair video_flows puts at t = 3.
    pairs = jnp.concatenate([VIDEO[:, 3], VIDEO[:, 4]], axis=-1)
    variables = init(model, pairs)
    predictions = train_step_outputs(model, variables, pairs)
    assert [p.shape for p in predictions] == [(BATCH, size, size, 2) for size in (16, 8, 4, 2, 1)]
    assert len(predictions) == len(MULTISCALE_WEIGHTS)

    flows = jax.jit(lambda v, x: video_flows(model.apply, v, x))(variables, VIDEO)
    assert flows.shape == (BATCH, 15, 16, 16, 2)
    np.testing.assert_allclose(flows[:, 3], predictions[0], atol=1e-4)


def test_flownet_paper_size_and_bfloat16():
    model = FlowNetS(dtype=jnp.bfloat16)
    pairs = jax.ShapeDtypeStruct((24, 64, 64, 6), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), pairs)
    assert_param_dtypes(variables)
    assert variables["params"]["conv6_1"]["kernel"].shape == (3, 3, 1024, 1024)
    predictions = jax.eval_shape(model.apply, variables, pairs)
    assert predictions[0].shape == (24, 16, 16, 2) and predictions[0].dtype == jnp.bfloat16


def test_multiscale_epe():
    target = normal(7, (BATCH * 15, 16, 16, 2))
    sizes = (16, 8, 4, 2, 1)
    perfect = [target.reshape(-1, s, 16 // s, s, 16 // s, 2).mean((2, 4)) for s in sizes]
    epe = jax.jit(multiscale_epe)
    assert float(epe(perfect, target)) == pytest.approx(0.0, abs=1e-6)
    # One unit of error in x at every pixel of the finest scale only: 0.005 * 256 pixels.
    off = [perfect[0].at[..., 0].add(1.0), *perfect[1:]]
    assert float(epe(off, target)) == pytest.approx(0.005 * 256, rel=1e-5)
    # A full-resolution target is pooled to every scale too.
    full = jnp.repeat(jnp.repeat(target, 4, axis=1), 4, axis=2)
    assert float(epe(perfect, full)) == pytest.approx(0.0, abs=1e-5)
    grads = jax.jit(jax.grad(multiscale_epe))(perfect, target)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


# ---------------------------------------------------------------- discriminator


@pytest.mark.parametrize("streams", ["three", "two", "frame_diff"])
def test_discriminator(streams):
    model = Discriminator(width=WIDTH, streams=streams)
    flows = FLOWS if streams == "three" else None
    variables = init(model, SPECTROGRAM, VIDEO, flows, train=False)
    logits = train_step_outputs(model, variables, SPECTROGRAM, VIDEO, flows, train=True)
    assert logits.shape == (BATCH,)
    assert logits.dtype == jnp.float32


@pytest.mark.parametrize("streams", ["three", "two", "frame_diff"])
def test_discriminator_paper_size_bfloat16(streams):
    model = Discriminator(streams=streams, dtype=jnp.bfloat16)
    args = (
        jax.ShapeDtypeStruct((24, 64, 128, 1), jnp.float32),
        jax.ShapeDtypeStruct((24, 16, 64, 64, 3), jnp.bfloat16),
        jax.ShapeDtypeStruct((24, 15, 16, 16, 2), jnp.bfloat16) if streams == "three" else None,
    )
    variables = jax.eval_shape(lambda *a: model.init(jax.random.PRNGKey(0), *a, False), *args)
    assert_param_dtypes(variables)
    logits = jax.eval_shape(lambda v, *a: model.apply(v, *a, False), variables, *args)
    assert logits.shape == (24,) and logits.dtype == jnp.bfloat16


# ---------------------------------------------------------------- perceptual


def test_perceptual_autoencoder():
    model = PerceptualAutoencoder(width=WIDTH, num_residual_blocks=2)
    variables = init(model, IMAGE, train=False)
    reconstruction = train_step_outputs(model, variables, IMAGE, train=True)
    assert reconstruction.shape == IMAGE.shape
    assert float(jnp.max(jnp.abs(reconstruction))) <= 1.0
    # Frozen feature extractor: running statistics; any leading axes.
    encode = jax.jit(lambda v, x: model.apply(v, x, method=model.encode))
    frames = VIDEO[:, :3]
    video_features = encode(variables, frames)
    assert video_features.shape == (BATCH, 3, 16, 16, 32)
    np.testing.assert_allclose(
        video_features.reshape(-1, 16, 16, 32),
        encode(variables, frames.reshape(-1, 64, 64, 3)),
        atol=1e-5,
    )


def test_perceptual_paper_size_subpixel_bfloat16():
    model = PerceptualAutoencoder(upsample="subpixel", dtype=jnp.bfloat16)
    frames = jax.ShapeDtypeStruct((24, 64, 64, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, False), frames)
    assert_param_dtypes(variables)
    assert sum(1 for k in variables["params"]["encoder"] if k.startswith("residual_")) == 6
    out = jax.eval_shape(lambda v, x: model.apply(v, x, False), variables, frames)
    assert out.shape == (24, 64, 64, 3) and out.dtype == jnp.bfloat16


def test_perceptual_loss():
    a = normal(8, (BATCH, 16, 16, 32))
    assert float(perceptual_loss(a, a)) == 0.0
    assert float(perceptual_loss(a, a + 2.0)) == pytest.approx(4.0)


def test_subpixel_upsampling_starts_without_checkerboard():
    """ICNR init: at initialisation every 2x2 output block of the sub-pixel convolution holds
    one value per channel (nearest-neighbour up-sampling of a convolution)."""
    block = UpsampleBlock(8, mode="subpixel")
    x = normal(3, (2, 3, 6, 6, 5))
    variables = block.init(jax.random.PRNGKey(0), x, train=False)
    conv = variables["params"]["conv"]["kernel"]
    assert conv.shape == (3, 3, 3, 5, 32)
    np.testing.assert_array_equal(conv[..., :8], conv[..., 24:])
    y = block.apply(variables, x, train=False)
    assert y.shape == (2, 3, 12, 12, 8)
    np.testing.assert_allclose(y[:, :, 0::2, 0::2], y[:, :, 1::2, 1::2], atol=1e-5)
    np.testing.assert_allclose(y[:, :, 0::2, 0::2], y[:, :, 0::2, 1::2], atol=1e-5)


def _mel_bins_reaching_columns(num_residual_blocks, columns=(0, 63), **generator_fields):
    """For each output column x, the mel bins on which frame 2's column x depends (exactly:
    the support of the gradient), for the CPU-sized generator with that decoder depth."""
    model = Generator(
        width=WIDTH,
        num_residual_blocks=num_residual_blocks,
        upsample="subpixel",
        output_kernel=3,
        conv3d_impl="taps",
        **generator_fields,
    )
    variables = init(model, SHORT_SPECTROGRAM[:1], IMAGE[:1], train=False)

    def column_sum(spectrogram, column):
        video, _ = model.apply(variables, spectrogram, IMAGE[:1], train=False)
        return video[0, 2, :, column, :].sum()

    gradient = jax.jit(jax.grad(column_sum), static_argnums=1)
    supports = []
    for column in columns:
        per_bin = np.abs(np.asarray(gradient(SHORT_SPECTROGRAM[:1], column)))[0, :, :, 0].sum(0)
        supports.append(set(np.flatnonzero(per_bin).tolist()))
    return supports


def test_decoder_depth_decides_which_frequencies_each_column_hears():
    # Audio frequency lies along the image's width after fusion (Fig. 3), so a shallow
    # decoder ties each image column to a band of frequencies: with the CPU config's 2
    # residual blocks the left edge of the frame hears only mel bins 0-58 (below ~2 kHz), the
    # right edge only 62-127: disjoint bands. With the paper's 9 every column hears every bin.
    cpu_depth = configs.cpu_sized(configs.base_config()).model.generator_residual_blocks
    left, right = _mel_bins_reaching_columns(cpu_depth)
    assert max(left) < min(right)
    left, right = _mel_bins_reaching_columns(configs.base_config().model.generator_residual_blocks)
    assert left == right == set(range(128))


def test_warp_image_known_shifts_and_gradient():
    image = uniform(5, (2, 8, 8, 3))
    flow = jnp.zeros((2, 3, 8, 8, 2))
    np.testing.assert_array_equal(warp_image(image, flow), jnp.repeat(image[:, None], 3, 1))
    # out[y, x] = image[y + dy, x + dx]: dx = 1 reads the next column (the last one clamps),
    # dy = -2 the row two above, and dx = 0.5 the mean of two neighbours.
    shifted = warp_image(image, flow.at[:, 0, ..., 0].set(1.0).at[:, 1, ..., 1].set(-2.0))
    np.testing.assert_allclose(shifted[:, 0, :, :-1], image[:, :, 1:], atol=1e-6)
    np.testing.assert_allclose(shifted[:, 0, :, -1], image[:, :, -1], atol=1e-6)
    np.testing.assert_allclose(shifted[:, 1, 2:], image[:, :-2], atol=1e-6)
    half = warp_image(image, flow.at[..., 0].set(0.5))
    np.testing.assert_allclose(
        half[:, 2, :, :-1], (image[:, :, :-1] + image[:, :, 1:]) / 2, atol=1e-6
    )

    gradient = jax.grad(lambda f: warp_image(image, f).sum())(flow + 0.25)
    assert np.all(np.isfinite(gradient)) and np.any(gradient[..., 0]) and np.any(gradient[..., 1])


def test_generator_warp_identity_starts_at_the_identity_and_learns_a_flow():
    model = Generator(
        width=WIDTH,
        num_residual_blocks=1,
        upsample="subpixel",
        identity_skip=True,
        warp_identity=True,
        conv3d_impl="taps",
    )
    variables = model.init(jax.random.PRNGKey(1), SHORT_SPECTROGRAM, IMAGE, train=False)
    assert variables["params"]["to_rgb"]["kernel"].shape[-1] == 5  # 3 residual + 2 flow
    video, _ = model.apply(variables, SHORT_SPECTROGRAM, IMAGE, train=False)
    expected = jnp.broadcast_to(jnp.clip(IMAGE, -0.999, 0.999)[:, None], video.shape)
    np.testing.assert_allclose(video, expected, atol=1e-5)

    def loss(params):
        video, _ = model.apply(
            {**variables, "params": params}, SHORT_SPECTROGRAM, IMAGE, train=False
        )
        return jnp.mean(jnp.abs(video - VIDEO[:, :4]))

    kernel_gradient = jax.grad(loss)(variables["params"])["to_rgb"]["kernel"]
    assert np.any(kernel_gradient[..., 3:]), "no gradient reaches the flow channels"

    # warp_flow_scale: pixels per output unit. A flow bias of 0.5 at scale 4 shifts every
    # frame by 2 px; the same bias at scale 1 by half a pixel.
    bias = variables["params"]["to_rgb"]["bias"].at[3:].set(0.5)
    shifted = {**variables["params"], "to_rgb": {**variables["params"]["to_rgb"], "bias": bias}}
    for scale in (1.0, 4.0):
        scaled = model.clone(warp_flow_scale=scale)
        video, _ = scaled.apply({**variables, "params": shifted}, SHORT_SPECTROGRAM, IMAGE, False)
        flow = jnp.full((*video.shape[:-1], 2), 0.5 * scale)
        expected = jnp.clip(warp_image(IMAGE, flow), -0.999, 0.999)
        np.testing.assert_allclose(video, expected, atol=1e-5)

    with pytest.raises(ValueError, match="identity_skip"):
        Generator(width=WIDTH, num_residual_blocks=1, warp_identity=True).init(
            jax.random.PRNGKey(0), SHORT_SPECTROGRAM, IMAGE, train=False
        )


def test_generator_identity_unet_skips_and_dense_audio_fusion():
    model = Generator(
        width=WIDTH,
        num_residual_blocks=1,
        upsample="subpixel",
        identity_skip=True,
        identity_unet_skips=True,
        audio_fusion="dense",
        output_kernel=3,
        conv3d_impl="taps",
    )
    variables = init(model, SHORT_SPECTROGRAM, IMAGE, train=False)
    params = variables["params"]
    # up_2 takes up_1's 16 channels and the identity encoder's 16 at 32 px; to_rgb takes
    # up_2's 8 and the identity encoder's 8 at 64 px.
    assert params["up_2"]["conv"]["kernel"].shape[-2] == 16 + 16
    assert params["to_rgb"]["kernel"].shape == (3, 3, 3, 8 + 8, 3)
    # The dense fusion: 16 frequencies x 32 channels -> 32 channels, beside the identity's 32.
    assert params["audio_code"]["kernel"].shape == (16 * 32, 32)
    assert params["fusion"]["conv"]["kernel"].shape[-2] == 32 + 32
    video, audio_features = train_step_outputs(
        model, variables, SHORT_SPECTROGRAM, IMAGE, train=True
    )
    assert video.shape == (BATCH, 4, 64, 64, 3)
    assert audio_features.shape == (BATCH, 4, 16, 32)

    # The 64 px skip carries the identity image's detail straight to the output: with the
    # decoder's own features zeroed in to_rgb, the output still changes with the image.
    kernel = params["to_rgb"]["kernel"].at[..., :8, :].set(0.0)
    skip_only = {
        **variables,
        "params": {**params, "to_rgb": {**params["to_rgb"], "kernel": kernel}},
    }

    def logits_from(image):
        video, _ = model.apply(skip_only, SHORT_SPECTROGRAM, image, train=False)
        return jnp.arctanh(video) - jnp.arctanh(jnp.clip(image, -0.999, 0.999))[:, None]

    assert float(jnp.max(jnp.abs(logits_from(IMAGE) - logits_from(-IMAGE)))) > 1e-3

    # Real initialisation with identity_skip: the static baseline, as without the options.
    variables = model.init(jax.random.PRNGKey(1), SHORT_SPECTROGRAM, IMAGE, train=False)
    video, _ = model.apply(variables, SHORT_SPECTROGRAM, IMAGE, train=False)
    expected = jnp.broadcast_to(jnp.clip(IMAGE, -0.999, 0.999)[:, None], video.shape)
    np.testing.assert_allclose(video, expected, atol=1e-5)

    with pytest.raises(ValueError, match="audio_fusion"):
        model.clone(audio_fusion="global").init(
            jax.random.PRNGKey(0), SHORT_SPECTROGRAM, IMAGE, train=False
        )

    # Both are config.model fields that training, evaluation and generate() pass on.
    built = build_generator({"identity_unet_skips": True, "audio_fusion": "dense"})
    assert built.identity_unet_skips and built.audio_fusion == "dense"
    default = build_generator(configs.base_config().model)
    assert not default.identity_unet_skips and default.audio_fusion == "paper"


def test_dense_audio_fusion_lets_every_column_hear_every_bin():
    # With the CPU config's 2 residual blocks the paper's fusion ties each image column to a
    # band of mel bins (test above); the dense fusion gives every pixel the whole spectrum.
    left, right = _mel_bins_reaching_columns(2, audio_fusion="dense")
    assert left == right == set(range(128))
