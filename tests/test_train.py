"""The single jit-compiled training step, data parallelism, and kill-and-resume."""

import functools
import itertools
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lipjax import checkpointing, configs, sharding
from lipjax.data import audio, pipeline
from lipjax.train import train_step, trainer

REPO = pathlib.Path(__file__).resolve().parents[1]


def _tiny_config():
    config = configs.cpu_sized(configs.base_config())
    config.model.width = 0.125
    config.model.generator_residual_blocks = 1
    config.flownet.width = 0.125
    config.perceptual.width = 0.125
    config.perceptual.num_residual_blocks = 1
    config.optim.train_flownet = True  # the paper's setting: FlowNet trains in the GAN stage
    return config


def _random_batch(batch_size: int, seed: int = 0) -> dict:
    keys = jax.random.split(jax.random.key(seed), 3)
    return {
        "audio": jax.random.normal(keys[0], (batch_size, 64, 128, 1)),
        "identity": jax.random.uniform(keys[1], (batch_size, 64, 64, 3), minval=-1, maxval=1),
        "video": jax.random.uniform(keys[2], (batch_size, 16, 64, 64, 3), minval=-1, maxval=1),
    }


def _state(config, networks):
    perceptual = None
    if networks.perceptual is not None:
        frames = jnp.zeros((1, 64, 64, 3))
        perceptual = networks.perceptual.init(jax.random.key(1), frames, train=False)
    return train_step.init_state(
        networks, config, jax.random.key(0), perceptual_variables=perceptual
    )


def _train_step(config, networks, **schedule):
    """`train_step.train_step` bound to these networks, their optimisers and losses."""
    return functools.partial(
        train_step.train_step,
        networks=networks,
        optimizers=train_step.make_optimizers(config),
        loss_config=config.loss,
        **schedule,
    )


@pytest.fixture(scope="module")
def tiny_setup():
    config = _tiny_config()
    networks = train_step.build_networks(config)
    step = _train_step(config, networks)
    return config, networks, step


def test_one_step_updates_every_network(tiny_setup):
    config, networks, step = tiny_setup
    state = _state(config, networks)
    before = jax.tree.map(np.asarray, state.params)
    step = jax.jit(step)
    # Two steps: with the identity skip the generator's output conv starts at zero, so its
    # earlier layers get their first gradient in the second step.
    state, metrics = step(state, _random_batch(8))
    state, metrics = step(state, _random_batch(8, seed=1))
    for name in ("pixel", "perceptual", "correlation", "adversarial"):
        assert np.isfinite(float(metrics[f"loss_{name}"])), name
    assert set(state.params) == {"generator", "flownet", "correlation", "discriminator"}
    for group, params in state.params.items():
        moved = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - b))), params,
                             before[group])  # fmt: skip
        assert all(d > 0 for d in jax.tree.leaves(moved)), f"{group} has a frozen leaf"
    assert int(state.step) == 2


def test_the_sync_expert_loss_is_one_more_term_of_the_generator_step():
    from lipjax.eval import lip_sync

    config = _tiny_config()
    # The expert's term beside the pixel loss only: the other terms compile elsewhere.
    config.loss.update(adversarial=0.0, correlation=0.0, perceptual=0.0, sync_expert=1.0)
    # The generator's audio is renormalised to the expert's fixed statistics in the step.
    config.model.log_mel_mean, config.model.log_mel_std = -45.0, 14.0
    networks = train_step.build_networks(config)
    assert networks.sync_expert is not None
    assert networks.log_mel_stats == audio.LogMelStats(-45.0, 14.0)
    with pytest.raises(ValueError, match="no sync expert"):
        _state(config, networks)
    _, expert = lip_sync.load_expert()
    state = train_step.init_state(networks, config, jax.random.key(0), sync_expert_variables=expert)
    step = jax.jit(_train_step(config, networks))
    before = jax.tree.map(np.asarray, state.params["generator"])
    for seed in range(2):
        state, metrics = step(state, _random_batch(8, seed=seed))
    assert 0 < float(metrics["loss_sync_expert"]) < 15
    unchanged = jax.tree.map(np.array_equal, state.frozen["sync_expert"], expert)
    assert all(jax.tree.leaves(unchanged)), "the expert must stay frozen"
    moved = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - b))),
                         state.params["generator"], before)  # fmt: skip
    assert all(d > 0 for d in jax.tree.leaves(moved))


def test_the_trainer_loads_the_sync_expert_and_checks_its_architecture(tmp_path):
    from lipjax.eval import lip_sync
    from lipjax.models.sync_expert import SyncExpert

    config = _tiny_config()
    # The expert's term beside the pixel loss only: the other terms compile elsewhere.
    config.loss.update(adversarial=0.0, correlation=0.0, perceptual=0.0, sync_expert=1.0)
    variables = trainer._load_sync_expert(config, train_step.build_networks(config).sync_expert)
    shipped = lip_sync.load_expert()[1]
    assert jax.tree.all(jax.tree.map(np.array_equal, variables, shipped))
    narrow = SyncExpert(embedding=16)
    lip_sync.save_expert(lip_sync.init_expert(0, narrow), tmp_path, narrow)
    config.loss.sync_expert_path = str(tmp_path)
    with pytest.raises(ValueError, match=r"sync_expert_path.*architecture"):
        trainer._load_sync_expert(config, SyncExpert())


def test_pixel_loss_falls_on_a_fixed_batch():
    # The pixel loss alone, through the full training step, on a learnable target (a
    # darkened identity image); the other terms pull elsewhere in the first steps.
    config = _tiny_config()
    config.loss.update(adversarial=0.0, correlation=0.0, perceptual=0.0)
    config.optim.learning_rate = 1e-3
    # The paper's generator: with the identity skip a darkened identity is far away in
    # logit space (atanh), and the first step only moves the zero-initialised output conv.
    config.model.identity_skip = False
    networks = train_step.build_networks(config)
    step = jax.jit(_train_step(config, networks))
    state = _state(config, networks)
    batch = _random_batch(8, seed=5)
    batch["video"] = jnp.repeat(0.5 * batch["identity"][:, None], 16, axis=1)
    history = []
    for _ in range(8):
        state, metrics = step(state, batch)
        history.append(float(metrics["loss_pixel"]))
    assert all(b < a for a, b in itertools.pairwise(history)), history
    assert history[-1] < 0.75 * history[0], history


def test_data_parallel_step_matches_one_device(tiny_setup):
    config, networks, step = tiny_setup
    batch = _random_batch(8, seed=3)
    single = jax.jit(step)(_state(config, networks), batch)

    mesh = sharding.make_mesh()
    assert mesh.devices.size == 8  # tests/conftest.py forces 8 CPU devices
    replicated, data = sharding.replicated(mesh), sharding.data_sharding(mesh)
    parallel_step = jax.jit(
        step, in_shardings=(replicated, data), out_shardings=(replicated, replicated),
        donate_argnums=0,
    )  # fmt: skip
    state = jax.device_put(_state(config, networks), replicated)
    batch = jax.device_put(batch, data)
    assert len(batch["video"].sharding.device_set) == 8
    parallel = parallel_step(state, batch)
    # Float32 sums over 8 shards against one: ~1e-4 apart, once 9e-4 (a loaded machine, where
    # XLA's CPU threads split the reductions differently).
    for key in ("generator_loss", "discriminator_loss", "loss_correlation", "generator_grad_norm"):
        np.testing.assert_allclose(
            parallel[1][key], single[1][key], rtol=2e-3, atol=1e-5, err_msg=key
        )
    # Adam's first update is about +-lr per element whatever the gradient's size, so an
    # element whose gradient is ~0 may move differently under another reduction order:
    # all elements agree within 2 lr, and all but a handful to float precision.
    learning_rate = config.optim.learning_rate
    single_leaves = jax.tree.leaves(single[0].params)
    parallel_leaves = jax.tree.leaves(parallel[0].params)
    mismatched = total = 0
    for a, b in zip(single_leaves, parallel_leaves, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(a, b, atol=2 * learning_rate, rtol=0)
        mismatched += np.sum(~np.isclose(a, b, rtol=1e-3, atol=1e-5))
        total += a.size
    assert mismatched / total < 1e-4, (mismatched, total)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"adversarial": 0.0}, {"generator", "flownet", "correlation"}),
        ({"correlation": 0.0, "discriminator": "two"}, {"generator", "discriminator"}),
        ({"correlation_mode": "non_derivative", "discriminator": "frame_diff"},
         {"generator", "correlation", "discriminator"}),
    ],
)  # fmt: skip
def test_loss_switches_build_the_table_2_variants(change, expected):
    config = _tiny_config()
    config.loss.update(change)
    networks = train_step.build_networks(config)
    state = _state(config, networks)
    assert set(state.params) == expected
    step = _train_step(config, networks)
    # Traced, not compiled (the whole step compiles in the tests above and in the
    # reproduce tests' trainings): each variant's step is a well-formed program.
    new_state, metrics = jax.eval_shape(step, state, _random_batch(4))
    assert jax.tree.structure(new_state.params) == jax.tree.structure(state.params)
    assert metrics["generator_loss"].shape == () and "loss_pixel" in metrics


def test_bad_config_values_are_named():
    config = _tiny_config()
    config.loss.discriminator = "four"
    with pytest.raises(ValueError, match=r"loss\.discriminator"):
        train_step.build_networks(config)
    with pytest.raises(ValueError, match="batch_size"):
        sharding.check_batch_size(6, sharding.make_mesh())


def test_unwritable_workdir_and_unbuilt_dataset(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="workdir"):
        trainer.prepare_workdir(str(blocker / "run"))
    config = configs.load_experiment("synthetic", "smoke")
    config.data_dir = str(tmp_path / "no_data")
    config.build_if_missing = False
    with pytest.raises(FileNotFoundError, match=r"python -m data_pipeline\.synthetic_lips build"):
        trainer.ensure_dataset(config)


def test_long_l1_schedule_needs_no_pretraining_and_only_it_uses_the_cpu_options():
    networks = train_step.build_networks(configs.load_experiment("synthetic", "long_l1"))
    # L1 alone: no discriminator, FlowNet, correlation nets or perceptual encoder, so the
    # run pretrains nothing.
    unused = (networks.discriminator, networks.flownet, networks.audio_correlation)
    assert all(network is None for network in (*unused, networks.perceptual))
    assert networks.generator.identity_unet_skips
    assert networks.generator.audio_fusion == "dense"
    for name, variant in (("synthetic", "long"), ("grid", ""), ("lrw", "")):
        generator = train_step.build_networks(configs.load_experiment(name, variant)).generator
        assert not generator.identity_unet_skips and generator.audio_fusion == "paper", name


def test_smoke_run_writes_checkpoints_metrics_and_samples(smoke_run):
    """The session's shared :smoke run (tests/conftest.py) pretrains, trains, evaluates."""
    run = smoke_run.workdir
    assert smoke_run.result["step"] == smoke_run.config.num_steps
    assert {"lmd", "static_lmd", "ssim", "psnr"} <= set(smoke_run.result)
    assert (run / "pretrain" / "flownet").is_dir() and (run / "pretrain" / "perceptual").is_dir()
    assert list((run / "checkpoints").iterdir())
    assert list((run / "tensorboard").iterdir())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "train" for r in rows) and any(r["split"] == "eval" for r in rows)
    assert list((run / "samples").glob("*.mp4")) and list((run / "samples").glob("*.gif"))
    assert (run / "losses.png").exists()
    params = checkpointing.load_params(run)
    assert "generator" in params["params"]
    # The run normalises its audio with its corpus's statistics and saves them with itself.
    saved = json.loads((run / "config.json").read_text())["model"]
    stats = pipeline.dataset_log_mel_stats(smoke_run.config.dataset, smoke_run.config.data_dir)
    assert (saved["log_mel_mean"], saved["log_mel_std"]) == (stats.mean, stats.std)


def _wait_for_checkpoint(directory: pathlib.Path, step: int, process, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (directory / str(step) / "state").is_dir() and process.poll() is None:
            return
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {process.stdout.read()}")
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint {step} in {timeout} s")


def test_killed_run_resumes_with_the_next_batch(smoke_run, tmp_path):
    """SIGKILL a run after its step-2 checkpoint, resume it to step 4: the parameters equal
    those of an uninterrupted 4-step run (same batches, nothing lost or repeated)."""
    pretrain = smoke_run.pretrain
    overrides = [
        f"--config.data_dir={smoke_run.config.data_dir}",
        f"--config.flownet.checkpoint={pretrain / 'flownet'}",
        f"--config.perceptual.checkpoint={pretrain / 'perceptual'}",
        "--config.eval.every_steps=1000",
    ]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "lipjax.main", "--config=experiments/synthetic.py:smoke",
         f"--workdir={killed}", "--config.num_steps=1000", *overrides],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")},
    )  # fmt: skip
    try:
        _wait_for_checkpoint(killed / "checkpoints", 2, process, timeout=900)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # The killed run may have got further than step 2; resume from exactly step 2.
    for extra in (killed / "checkpoints").iterdir():
        if extra.name.isdigit() and int(extra.name) > 2:
            import shutil

            shutil.rmtree(extra)

    def run(workdir, steps):
        resumed = smoke_run.fresh_config()
        resumed.eval.every_steps = 1000
        resumed.num_steps = steps
        return trainer.train_and_evaluate(resumed, str(workdir))

    run(killed, 4)
    run(tmp_path / "straight", 4)
    resumed_params = checkpointing.load_params(killed)["params"]
    straight_params = checkpointing.load_params(tmp_path / "straight")["params"]
    for a, b in zip(jax.tree.leaves(resumed_params), jax.tree.leaves(straight_params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_grid_smoke_trains_on_the_grid_dummy_build(tmp_path):
    """experiments/grid.py:smoke builds the GRID dummy data (our synthetic export in GRID's
    layout) through the real preprocessing path, and trains and evaluates on it. (The
    pretraining stages are switched off here: the synthetic smoke run tests them.)"""
    config = configs.load_experiment("grid", "smoke")
    assert config.dataset == "grid" and pathlib.Path(config.manual_dir).is_dir()
    config.data_dir = str(tmp_path / "tfds")
    config.loss.perceptual = config.loss.correlation = config.loss.adversarial = 0.0
    result = trainer.train_and_evaluate(config, str(tmp_path / "run"))
    assert result["step"] == config.num_steps
    assert np.isfinite(result["lmd"]) and np.isfinite(result["static_lmd"])
    assert (tmp_path / "tfds" / "grid").is_dir()


def test_schedule_decays_learning_rates_and_starts_the_average():
    schedule = train_step.Schedule(num_steps=2000, decay_start_step=1000, ema_decay=0.99,
                                   ema_start_step=500)  # fmt: skip
    scale = [float(schedule.learning_rate_scale(jnp.asarray(s))) for s in (0, 1000, 1500, 2000)]
    np.testing.assert_allclose(scale, [1.0, 1.0, 0.5, 0.0])
    assert float(schedule.average_decay(jnp.asarray(499))) == 0.0
    assert float(schedule.average_decay(jnp.asarray(500))) == pytest.approx(0.99)
    assert not train_step.Schedule(num_steps=100).decays


def test_step_keeps_a_weight_average_and_scales_updates(tiny_setup):
    config, networks, _ = tiny_setup
    config = config.copy_and_resolve_references()
    config.optim.ema_decay = 0.9
    state = _state(config, networks)
    assert set(state.ema) == {"generator"}

    # One schedule, one compile: step 0 copies the weights into the average (before
    # ema_start_step), step 1 averages (Eq. EMA), the learning rates decay linearly from
    # step 2 and are zero at step 3 == num_steps.
    schedule = train_step.Schedule(num_steps=3, decay_start_step=2, ema_decay=0.9,
                                   ema_start_step=1)  # fmt: skip
    step = jax.jit(_train_step(config, networks, schedule=schedule))
    state, _ = step(state, _random_batch(8))
    for a, b in zip(jax.tree.leaves(state.ema), jax.tree.leaves(state.params["generator"]),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    previous = jax.tree.map(np.asarray, state.ema["generator"])
    state, _ = step(state, _random_batch(8, seed=1))
    expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * np.asarray(p), previous,
                            state.params["generator"])  # fmt: skip
    for a, b in zip(jax.tree.leaves(state.ema["generator"]), jax.tree.leaves(expected),
                    strict=True):  # fmt: skip
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-7)
    assert state.generator_for_eval()["generator"] is state.ema["generator"]

    state, metrics = step(state, _random_batch(8, seed=2))
    assert float(metrics["learning_rate_scale"]) == 1.0
    frozen = jax.tree.map(np.asarray, state.params)
    state, metrics = step(state, _random_batch(8, seed=3))  # state.step == 3 == num_steps
    assert float(metrics["learning_rate_scale"]) == 0.0
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(frozen), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_resume_switches_on_the_weight_average(smoke_run, tmp_path):
    """A run saved without a weight average resumes under a config with one (the average
    starts from the saved weights); its validation scores the average beside the trained
    weights, and exported parameters are the average."""

    def run(steps, **optim):
        resumed = smoke_run.fresh_config()
        resumed.num_steps = steps
        resumed.eval.every_steps = 1000
        resumed.optim.update(optim)
        return trainer.train_and_evaluate(resumed, str(tmp_path / "run"))

    run(2)
    result = run(4, ema_decay=0.5, ema_start_step=2, decay_start_step=2)
    assert {"trained_lmd", "trained_ssim", "trained_psnr"} <= set(result)
    latest = tmp_path / "run" / "checkpoints"  # `best` may still be the step-2 checkpoint
    averaged = checkpointing.load_params(latest)["params"]["generator"]
    trained = checkpointing.load_params(latest, use_average=False)["params"]
    pairs = zip(jax.tree.leaves(averaged), jax.tree.leaves(trained["generator"]), strict=True)
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in pairs)
    with pytest.raises(ValueError, match="ema_decay"):
        run(6)  # a checkpoint with an average under a config without one
