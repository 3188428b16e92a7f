"""The Table 3 baselines (Chung et al. 2017, conditional Vondrick et al. 2016): shapes,
gradients, Chung's frame-by-frame generation, and a whole smoke run of each through the
same training, evaluation, weights and generate() code as our model."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lipjax import checkpointing, configs
from lipjax.inference import generate as generate_module
from lipjax.inference.weights import Weights, load_weights, save_weights
from lipjax.models import ChungGenerator, VondrickGenerator, build_generator
from lipjax.models.chung_baseline import AUDIO_WINDOW, frame_audio_windows
from lipjax.train import train_step, trainer

BASELINES = ("chung", "vondrick")
CPU = {"width": 0.125, "upsample": "subpixel"}


def _inputs(batch: int, seed: int = 0):
    keys = jax.random.split(jax.random.key(seed), 2)
    audio = jax.random.normal(keys[0], (batch, 64, 128, 1))
    identity = jax.random.uniform(keys[1], (batch, 64, 64, 3), minval=-1, maxval=1)
    return audio, identity


def _random_batch(batch: int, seed: int = 0) -> dict:
    audio, identity = _inputs(batch, seed)
    video = jax.random.uniform(jax.random.key(seed + 7), (batch, 16, 64, 64, 3), minval=-1)
    return {"audio": audio, "identity": identity, "video": video}


@pytest.mark.parametrize("baseline", BASELINES)
def test_experiment_files_select_the_baseline(baseline):
    for variant in ("", "synthetic", "smoke"):
        config = configs.load_experiment(f"table3_{baseline}", variant)
        assert config.model.architecture == baseline
        assert config.loss.correlation == config.loss.perceptual == 0.0
    paper = configs.load_experiment(f"table3_{baseline}")
    assert paper.dataset == "grid" and paper.model.width == 1.0
    assert configs.load_experiment(f"table3_{baseline}", "smoke").dataset == "synthetic_lips/tiny"
    networks = train_step.build_networks(paper)
    module = {"chung": ChungGenerator, "vondrick": VondrickGenerator}[baseline]
    assert isinstance(networks.generator, module)
    assert networks.flownet is None and networks.audio_correlation is None
    if baseline == "chung":
        assert networks.discriminator is None and paper.loss.adversarial == 0.0
    else:
        assert networks.discriminator.streams == "two" and paper.loss.pixel == 0.0


def test_bad_architecture_and_correlation_are_named():
    config = configs.load_experiment("table3_chung", "smoke")
    config.loss.correlation = 1.0
    with pytest.raises(ValueError, match=r"loss\.correlation"):
        train_step.build_networks(config)
    config.model.architecture = "pix2pix"
    with pytest.raises(ValueError, match=r"model\.architecture"):
        train_step.build_networks(config)


@pytest.mark.parametrize("baseline", BASELINES)
def test_output_shapes_and_range(baseline):
    audio, identity = _inputs(2)
    # Paper sizes: shapes only (no compute).
    paper = build_generator({"architecture": baseline})
    variables = jax.eval_shape(lambda: paper.init(jax.random.key(0), audio, identity, False))
    video, _ = jax.eval_shape(
        lambda v: paper.apply(v, audio, identity, train=False),
        {"params": variables["params"], "batch_stats": variables["batch_stats"]},
    )
    assert video.shape == (2, 16, 64, 64, 3)
    # CPU sizes: run it, with and without the identity skip.
    for identity_skip in (False, True):
        model = build_generator({"architecture": baseline, "identity_skip": identity_skip, **CPU})
        variables = model.init(jax.random.key(0), audio, identity, train=False)
        video, _ = model.apply(variables, audio, identity, train=False)
        assert video.shape == (2, 16, 64, 64, 3) and video.dtype == jnp.float32
        assert float(jnp.min(video)) >= -1.0 and float(jnp.max(video)) <= 1.0
        if identity_skip:  # zero-initialised last layers: the static baseline at init
            clipped = jnp.clip(identity, -0.999, 0.999)
            np.testing.assert_allclose(video, jnp.repeat(clipped[:, None], 16, 1), atol=1e-5)


@pytest.mark.parametrize("baseline", BASELINES)
def test_gradients_reach_every_parameter(baseline):
    model = build_generator({"architecture": baseline, **CPU, "conv3d_impl": "taps"})
    audio, identity = _inputs(2, seed=1)
    variables = model.init(jax.random.key(0), audio, identity, train=False)
    target = jax.random.normal(jax.random.key(3), (2, 16, 64, 64, 3))

    def loss(params):
        (video, _), _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            audio,
            identity,
            train=True,
            mutable=["batch_stats"],
        )
        return jnp.mean(video * target)

    grads = jax.grad(loss)(variables["params"])
    zero = [
        jax.tree_util.keystr(path)
        for path, grad in jax.tree_util.tree_flatten_with_path(grads)[0]
        if not np.any(np.asarray(grad) != 0)
    ]
    assert not zero, f"no gradient reaches {zero}"


def test_chung_frame_t_sees_only_its_own_audio_window():
    """Frame t is generated from the 35 mel frames centred on it (mel frame 4t + 2):
    changing the audio outside that window leaves the frame unchanged."""
    model = ChungGenerator(**CPU)
    audio, identity = _inputs(2, seed=2)
    variables = model.init(jax.random.key(0), audio, identity, train=False)
    apply = jax.jit(lambda a: model.apply(variables, a, identity, train=False)[0])
    base = np.asarray(apply(audio))
    half = AUDIO_WINDOW // 2
    for frame in (0, 7, 15):
        centre = 4 * frame + 2
        inside = np.zeros(64, bool)
        inside[max(0, centre - half) : centre + half + 1] = True
        noise = 3.0 * jax.random.normal(jax.random.key(frame), audio.shape)
        outside = np.asarray(apply(jnp.where(inside[None, :, None, None], audio, noise)))
        np.testing.assert_array_equal(outside[:, frame], base[:, frame])
        assert np.max(np.abs(outside - base)) > 1e-3  # other frames do change
        edge = np.zeros(64, bool)
        edge[min(63, centre + half)] = True  # one mel frame at the window's edge
        changed = np.asarray(apply(jnp.where(edge[None, :, None, None], noise, audio)))
        assert np.max(np.abs(changed[:, frame] - base[:, frame])) > 1e-4


def test_chung_audio_windows_are_centred_on_each_frame():
    mel = jnp.arange(1.0, 65.0)[None, :, None, None]  # row r holds r + 1; padding is 0
    windows = np.asarray(frame_audio_windows(mel))[0, :, :, 0, 0]
    assert windows.shape == (16, AUDIO_WINDOW)
    for frame in range(16):
        rows = np.arange(4 * frame + 2 - 17, 4 * frame + 2 + 18)
        expected = np.where((rows >= 0) & (rows < 64), rows + 1, 0)
        np.testing.assert_array_equal(windows[frame], expected)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory, tiny_data_dir):
    """experiments/table3_*.py:smoke, each a whole run (training, evaluation, samples) on
    synthetic_lips/tiny."""
    root = tmp_path_factory.mktemp("table3")
    results = {}
    for baseline in BASELINES:
        config = configs.load_experiment(f"table3_{baseline}", "smoke")
        config.data_dir = tiny_data_dir
        results[baseline] = (config, trainer.train_and_evaluate(config, str(root / baseline)))
    return root, results


@pytest.mark.parametrize("baseline", BASELINES)
def test_smoke_run_trains_and_evaluates(smoke_runs, baseline):
    root, results = smoke_runs
    config, result = results[baseline]
    assert result["step"] == config.num_steps
    assert np.isfinite(result["lmd"]) and np.isfinite(result["static_lmd"])
    run = root / baseline
    assert json.loads((run / "config.json").read_text())["model"]["architecture"] == baseline
    assert list((run / "samples").glob("*.mp4"))


@pytest.mark.parametrize("baseline", BASELINES)
def test_training_moves_every_network_with_its_losses(smoke_runs, baseline):
    """The smoke run's training steps moved every parameter of every network it trains
    (from the initial state the trainer drew with the config's seed), and logged the
    baseline's own loss terms."""
    root, results = smoke_runs
    config, _ = results[baseline]
    networks = train_step.build_networks(config)
    initial = train_step.init_state(networks, config, jax.random.key(config.seed)).params
    trained = checkpointing.load_params(
        root / baseline / "checkpoints", step=config.num_steps, use_average=False
    )["params"]
    expected = {"generator"} | ({"discriminator"} if baseline == "vondrick" else set())
    assert set(initial) == expected and expected <= set(trained)
    for group in expected:
        moved = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b)))),
                             trained[group], initial[group])  # fmt: skip
        frozen = [k for k, d in jax.tree_util.tree_flatten_with_path(moved)[0] if d == 0]
        assert not frozen, f"{group}: {frozen}"
    rows = [json.loads(line) for line in (root / baseline / "metrics.jsonl").open()]
    train_rows = [row for row in rows if row["split"] == "train"]
    assert len(train_rows) == config.num_steps
    for row in train_rows:
        assert np.isfinite(row["generator_loss"])
        if baseline == "vondrick":  # the GAN objective and the mask sparsity prior
            assert 0.0 < row["loss_mask_sparsity"] < 1.0
            np.testing.assert_allclose(
                row["generator_loss"],
                row["loss_adversarial"] + config.loss.mask_sparsity * row["loss_mask_sparsity"],
                rtol=1e-5,
            )


@pytest.mark.parametrize("baseline", BASELINES)
def test_weights_round_trip_and_generate(smoke_runs, baseline, tmp_path):
    root, _ = smoke_runs
    weights = load_weights(root / baseline)
    assert weights.model["architecture"] == baseline
    module = {"chung": ChungGenerator, "vondrick": VondrickGenerator}[baseline]
    assert isinstance(weights.generator(), module)
    saved = save_weights(weights, tmp_path / "weights")
    assert json.loads((saved / "model.json").read_text())["architecture"] == baseline
    loaded = load_weights(saved)
    assert isinstance(loaded.generator(), module)
    for a, b in zip(jax.tree.leaves(loaded.variables), jax.tree.leaves(weights.variables),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rng = np.random.default_rng(0)
    waveform = (0.1 * rng.standard_normal(16_000)).astype(np.float32)  # 1 s at 16 kHz
    crop = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frames = generate_module.generate(loaded, waveform, crop, sample_rate=16_000)
    again = generate_module.generate(weights, waveform, crop, sample_rate=16_000)
    assert frames.shape == (25, 64, 64, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames, again)


def test_weights_without_architecture_are_the_paper_generator():
    """model.json files written before the switch existed rebuild our generator."""
    from lipjax.models import Generator

    weights = Weights({"width": 0.125, "upsample": "subpixel"}, {}, {})
    assert isinstance(weights.generator(), Generator)
