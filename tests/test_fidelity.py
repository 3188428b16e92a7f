"""Fidelity to the authors' code (docs/FIDELITY.md): parameter counts at paper size and the
parameter groups each loss's gradient reaches."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lipjax import configs
from lipjax.eval import reproduce
from lipjax.models import Discriminator, FlowNetS, Generator
from lipjax.models.flownet import multiscale_epe
from lipjax.train import train_step

AUDIO = jax.ShapeDtypeStruct((2, 64, 128, 1), jnp.float32)
IMAGE = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
VIDEO = jax.ShapeDtypeStruct((2, 16, 64, 64, 3), jnp.float32)
FLOWS = jax.ShapeDtypeStruct((2, 15, 16, 16, 2), jnp.float32)
PAIRS = jax.ShapeDtypeStruct((2, 64, 64, 6), jnp.float32)


def parameter_count(model, *args, **kwargs) -> int:
    """Parameters of `model.init(*args)`, from shapes only (nothing is allocated)."""
    variables = jax.eval_shape(lambda *a: model.init(jax.random.key(0), *a, **kwargs), *args)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))


# Counted by hand from lelechen63/3d_gan@83b65d9 (docs/FIDELITY.md): PyTorch parameters,
# BatchNorm running statistics excluded.
AUTHORS_GENERATOR = 16_695_267  # model_corr.py Generator
AUTHORS_TWO_STREAM_D = 55_593_249  # model_corr.py Discriminator
AUTHORS_THREE_STREAM_D = 54_278_881  # model_flownet_diff.py Discriminator
AUTHORS_FLOWNETS = 38_676_496  # flownet/FlowNetS.py, batchNorm=False
FLOWNET_PREDICTION_BIASES = 5 * 2  # lipjax keeps a bias on each of the 5 predict_flow convs


def test_generator_has_the_authors_parameter_count():
    assert parameter_count(Generator(), AUDIO, IMAGE, train=False) == AUTHORS_GENERATOR


@pytest.mark.parametrize(
    ("streams", "layout", "expected"),
    [
        ("three", "authors", AUTHORS_THREE_STREAM_D),
        ("two", "authors", AUTHORS_TWO_STREAM_D),
        ("three", "lipjax_v1", 62_012_353),
        # v1's two-stream D differs from the authors' by the first audio conv's BatchNorm
        # (bias 32 instead of scale + offset 64).
        ("two", "lipjax_v1", AUTHORS_TWO_STREAM_D - 32),
    ],
)
def test_discriminator_parameter_counts(streams, layout, expected):
    flows = FLOWS if streams == "three" else None
    model = Discriminator(streams=streams, layout=layout)
    assert parameter_count(model, AUDIO, VIDEO, flows, train=False) == expected


def test_flownet_has_the_authors_parameter_count_plus_prediction_biases():
    count = parameter_count(FlowNetS(), PAIRS)
    assert count == AUTHORS_FLOWNETS + FLOWNET_PREDICTION_BIASES


def test_discriminator_activation_changes_outputs_not_parameters():
    model = Discriminator(width=0.0625, streams="two")
    audio = jax.random.normal(jax.random.key(1), AUDIO.shape)
    video = jax.random.uniform(jax.random.key(2), VIDEO.shape, minval=-1, maxval=1)
    variables = model.init(jax.random.key(0), audio, video, None, train=False)
    relu = model.apply(variables, audio, video, None, train=False)
    leaky = model.clone(activation="leaky_relu").apply(variables, audio, video, None, train=False)
    assert relu.shape == leaky.shape == (2,)
    assert not np.allclose(relu, leaky)
    with pytest.raises(ValueError, match="activation"):
        model.clone(activation="tanh").init(jax.random.key(0), audio, video, None, train=False)


def test_multiscale_epe_sum_and_mean():
    # Constant error of 1 pixel at every scale: "sum" weighs each scale by its pixel count,
    # "mean" by 1.
    predictions = tuple(jnp.ones((3, s, s, 2)) * jnp.array([0.6, 0.8]) for s in (16, 8, 4, 2, 1))
    target = jnp.zeros((3, 64, 64, 2))
    weights = (0.005, 0.01, 0.02, 0.08, 0.32)
    summed = sum(w * s * s for w, s in zip(weights, (16, 8, 4, 2, 1), strict=True))
    np.testing.assert_allclose(multiscale_epe(predictions, target), summed, rtol=1e-5)
    np.testing.assert_allclose(
        multiscale_epe(predictions, target, reduction="mean"), sum(weights), rtol=1e-5
    )
    with pytest.raises(ValueError, match="reduction"):
        multiscale_epe(predictions, target, reduction="max")


def _gradient_reach_config(**loss):
    """Tiny networks, no weight decay: a group's weights move iff its gradient is non-zero."""
    config = configs.cpu_sized(configs.base_config())
    config.model.width = 0.0625
    config.model.generator_residual_blocks = 1
    config.model.identity_skip = False  # (its zero output conv would hide the first step)
    config.flownet.width = 0.0625
    config.optim.train_flownet = True
    for field in ("weight_decay", "correlation_weight_decay", "flownet_weight_decay"):
        config.optim[field] = 0.0
    config.loss.update({"pixel": 0.0, "perceptual": 0.0, "correlation": 0.0, **loss})
    return config


def _groups_moved(config) -> dict[str, bool]:
    networks = train_step.build_networks(config)
    state = train_step.init_state(networks, config, jax.random.key(0))
    step = functools.partial(
        train_step.train_step,
        networks=networks,
        optimizers=train_step.make_optimizers(config),
        loss_config=config.loss,
    )
    keys = jax.random.split(jax.random.key(3), 3)
    batch = {
        "audio": jax.random.normal(keys[0], (2, 64, 128, 1)),
        "identity": jax.random.uniform(keys[1], (2, 64, 64, 3), minval=-1, maxval=1),
        "video": jax.random.uniform(keys[2], (2, 16, 64, 64, 3), minval=-1, maxval=1),
    }
    new_state, _ = jax.jit(step)(state, batch)
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         state.params, new_state.params)  # fmt: skip
    return {group: any(jax.tree.leaves(leaves)) for group, leaves in moved.items()}


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        # l_gen through the three-stream D: the generator (through the video and, via the
        # flows, through FlowNet's input) and D (its own loss); FlowNet's weights not.
        (
            {"adversarial": 1.0, "flownet_losses": "correlation"},
            {"generator": True, "flownet": False, "discriminator": True},
        ),
        (
            {"adversarial": 1.0, "flownet_losses": "all"},
            {"generator": True, "flownet": True, "discriminator": True},
        ),
        # l_corr: the generator (f_s and the generated flows), phi_s, phi_v and FlowNet.
        (
            {"adversarial": 0.0, "correlation": 1.0},
            {"generator": True, "flownet": True, "correlation": True},
        ),
        ({"adversarial": 0.0, "pixel": 1.0}, {"generator": True}),
    ],
)
def test_parameter_groups_each_loss_reaches(loss, expected):
    assert _groups_moved(_gradient_reach_config(**loss)) == expected


def test_grid_authors_variant_is_the_released_trainer():
    config = configs.load_experiment("grid", "authors")
    assert config.dataset == "grid"
    assert (config.loss.discriminator, config.loss.pixel) == ("two", 0.2)
    assert config.loss.discriminator_layout == "authors"
    discriminator = train_step.build_networks(config).discriminator
    count = parameter_count(discriminator, AUDIO, VIDEO, None, train=False)
    assert count == AUTHORS_TWO_STREAM_D


def test_lipjax_v1_restores_the_earlier_choices_and_its_records():
    config = configs.load_experiment("table2_e", "synthetic_v1")
    assert config.loss.discriminator_layout == "lipjax_v1"
    assert config.loss.discriminator_activation == "leaky_relu"
    assert config.loss.flownet_losses == "all"
    assert config.flownet.finetune_epe_reduction == "sum"
    assert (config.optim.correlation_b1, config.optim.correlation_weight_decay) == (0.5, 4e-4)
    assert configs.load_experiment("table2_e", "synthetic").loss.discriminator_layout == "authors"
    # Records written before issue 24 count as "synthetic_v1", not as today's "synthetic".
    old = {"steps": 10, "split": "test", "variant": "synthetic", "pretraining": {}}
    new = {**old, "defaults": reproduce.DEFAULTS_VERSION}
    for record, variant in ((old, "synthetic_v1"), (new, "synthetic")):
        expected = {"steps": 10, "split": "test", "variant": variant, "pretraining": {}}
        assert reproduce._matches(record, expected)
        assert not reproduce._matches(record, {**expected, "variant": "other"})
    assert not reproduce._matches(old, {**expected, "variant": "synthetic"})


def test_bad_fidelity_fields_are_named():
    for field in ("discriminator_layout", "discriminator_activation", "flownet_losses"):
        config = configs.cpu_sized(configs.base_config())
        config.loss[field] = "something"
        with pytest.raises(ValueError, match=rf"loss\.{field}"):
            train_step.build_networks(config)


def test_paper_protocol_psnr_and_ssim_are_grey_with_a_7x7_uniform_window():
    from skimage.metrics import structural_similarity

    from lipjax.eval import metrics

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-40, 41, real.shape), 0, 255).astype(np.uint8)
    # OpenCV's COLOR_BGR2GRAY on uint8 (the authors'): BT.601 in 14-bit fixed point.
    grey = lambda f: (f.astype(int) @ [4899, 9617, 1868] + 8192) >> 14  # noqa: E731
    expected_ssim = structural_similarity(grey(real[1, 2]), grey(fake[1, 2]), data_range=255.0)
    ssim = metrics.ssim_per_frame_paper(real, fake)
    assert ssim.shape == (2, 3)
    np.testing.assert_allclose(ssim[1, 2], expected_ssim, rtol=1e-12)
    assert not np.isclose(ssim[1, 2], metrics.ssim_per_frame(real, fake, grey=True)[1, 2])
    mse = np.mean((grey(real[0, 1]) - grey(fake[0, 1])) ** 2)
    np.testing.assert_allclose(
        metrics.psnr_per_frame_paper(real, fake)[0, 1], 10 * np.log10(255.0**2 / mse)
    )
