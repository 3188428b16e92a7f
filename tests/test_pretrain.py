"""Tests of the pretraining stages: generated flow data, TV-L1 targets, FlowNet, perceptual."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import ndimage

from lipjax import configs
from lipjax.data import flow_data
from lipjax.data.flow_data import FLOW_SCALE
from lipjax.train import loop, pretrain_flownet, pretrain_perceptual


@pytest.fixture(scope="module")
def tiny_corpus(tiny_data_dir):
    """The `tiny` synthetic_lips corpus (built once per session, see conftest)."""
    return tiny_data_dir


# ----------------------------------------------------------------------- flow data


def _warp_errors(pairs, flow, visible):
    """|frame1 - frame2 pulled back by the flow| and |frame1 - frame2| on visible pixels."""
    warped, unwarped = [], []
    for pair, field, mask in zip(pairs, flow, visible, strict=True):
        frame1, frame2 = pair[..., :3], pair[..., 3:]
        back = flow_data.warp_backward(frame2, field)
        warped.append(np.abs(back - frame1).max(axis=-1)[mask])
        unwarped.append(np.abs(frame2 - frame1).max(axis=-1)[mask])
    return np.concatenate(warped), np.concatenate(unwarped)


def test_synthetic_flow_is_exact():
    pairs, flow, visible = flow_data.synthetic_flow_batch(
        np.random.default_rng(0), 8, photometric_jitter=False, with_visibility=True
    )
    assert pairs.shape == (8, 64, 64, 6) and pairs.dtype == np.float32
    assert flow.shape == (8, 64, 64, 2) and flow.dtype == np.float32
    assert pairs.min() >= -1 and pairs.max() <= 1
    assert 0.5 < visible.mean() < 1.0  # occlusions and borders exist, but most pixels are seen
    assert 2 < np.abs(flow).max() * FLOW_SCALE < 20

    warped, unwarped = _warp_errors(pairs, flow, visible)
    # Only bilinear re-sampling of frame 2 separates the two (and the pixels next to an
    # occlusion boundary, whose 2x2 footprint in frame 2 touches the occluder).
    assert np.mean(warped) < 0.012
    assert np.percentile(warped, 90) < 0.02
    assert np.mean(unwarped) > 10 * np.mean(warped)


def test_flips_and_transposes_keep_the_flow_exact():
    pairs, flow, visible = flow_data.synthetic_flow_batch(
        np.random.default_rng(1), 8, photometric_jitter=False, with_visibility=True
    )
    codes = np.arange(8)
    moved_pairs, moved_flow = flow_data.dihedral_transform(pairs, flow, codes)
    moved_visible, _ = flow_data.dihedral_transform(
        np.repeat(visible[..., None], 6, axis=-1), flow, codes
    )
    warped, _ = _warp_errors(moved_pairs, moved_flow, moved_visible[..., 0])
    assert np.mean(warped) < 0.012


def test_small_motion_share():
    def mean_motion_px(share):
        rng = np.random.default_rng(2)
        _, flow = flow_data.synthetic_flow_batch(rng, 32, small_motion_share=share)
        return np.linalg.norm(flow, axis=-1).mean() * FLOW_SCALE

    small, large = mean_motion_px(1.0), mean_motion_px(0.0)
    assert 0.3 < small < 1.5 < 3 < large


def test_pool_batches_are_a_function_of_the_step():
    def pool():
        return flow_data.SyntheticFlowPool(3, 1, batch_size=4, pool_size=8, refresh_per_step=2)

    sequential = pool()
    for step in range(6):
        expected = sequential.batch(step)
    resumed = pool().batch(5)
    np.testing.assert_array_equal(resumed[0], expected[0])
    np.testing.assert_array_equal(resumed[1], expected[1])


def _smooth_image(seed: int, size: int) -> np.ndarray:
    """A smooth random RGB image in [-1, 1]."""
    noise = np.random.default_rng(seed).standard_normal((size, size, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(3, 3, 0))
    return (smooth / np.abs(smooth).max()).astype(np.float32)


@pytest.mark.parametrize("method", ["tvl1", "farneback"])
def test_classical_flow_convention_on_a_known_translation(method):
    if method == "farneback":
        pytest.importorskip("cv2")
    frame1 = _smooth_image(4, 96)
    dx, dy = 2, -1
    frame2 = np.roll(frame1, shift=(dy, dx), axis=(0, 1))
    flow = flow_data.CLASSICAL_FLOWS[method](frame1[16:80, 16:80], frame2[16:80, 16:80])
    interior = flow[8:-8, 8:-8] * FLOW_SCALE
    np.testing.assert_allclose(np.median(interior, axis=(0, 1)), [dx, dy], atol=0.2)


def test_farneback_targets_agree_with_the_exact_flow():
    pytest.importorskip("cv2")
    pairs, flow = flow_data.synthetic_flow_batch(
        np.random.default_rng(5), 8, small_motion_share=1.0, photometric_jitter=False
    )
    farneback = flow_data.classical_flows(pairs, "farneback", num_workers=1, progress=False)
    # Closer than zero flow, though much less close than TV-L1 (0.91x against 0.48x zero
    # flow's error on these pairs: the authors' 15-px window is coarse for 64-px crops).
    error = flow_data.end_point_error(farneback, flow)
    assert error < 0.95 * flow_data.end_point_error(np.zeros_like(flow), flow)
    with pytest.raises(ValueError, match="finetune_targets"):
        flow_data.classical_flows(pairs, "lucas_kanade", progress=False)


def test_tvl1_agrees_with_the_exact_flow_and_workers_agree():
    pairs, flow = flow_data.synthetic_flow_batch(
        np.random.default_rng(5), 8, small_motion_share=1.0, photometric_jitter=False
    )
    serial = flow_data.classical_flows(pairs, "tvl1", num_workers=1, progress=False)
    parallel = flow_data.classical_flows(pairs, "tvl1", num_workers=2, progress=False)
    np.testing.assert_allclose(parallel, serial, atol=1e-6)
    # Same units, axes and direction as the generator: far better than zero flow.
    tvl1_error = flow_data.end_point_error(serial, flow)
    assert tvl1_error < 0.5 * flow_data.end_point_error(np.zeros_like(flow), flow)


# ------------------------------------------------------------------------- FlowNet


def _flownet_config(data_dir: str) -> ml_collections.ConfigDict:
    config = configs.cpu_sized(configs.base_config())
    config.dataset = "synthetic_lips/tiny"
    config.data_dir = data_dir
    config.flownet.update(
        {
            "width": 0.125,
            "output_init_scale": 1.0,  # the loss then falls fast from He init's large flows
            "synthetic_steps": 60,
            "finetune_steps": 6,
            "batch_size": 8,
            "synthetic_pool_size": 32,
            "synthetic_refresh_per_step": 4,
            "finetune_pairs": 12,
            "validation_pairs": 6,
            "synthetic_eval_pairs": 8,
            "tvl1_eval_pairs": 2,
            "target_workers": 1,
            "log_every": 10,
            "checkpoint_every": 1000,
        }
    )
    return config


@pytest.fixture(scope="module")
def flownet_run(tiny_corpus, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("flownet")
    config = _flownet_config(tiny_corpus)
    return config, workdir, pretrain_flownet.run(config, workdir)


def test_flownet_synthetic_loss_falls(flownet_run):
    _, _, report = flownet_run
    log = report["synthetic"]["loss_log"]
    assert len(log) == 6
    assert log[-1]["loss"] < 0.85 * log[0]["loss"]
    assert set(report["synthetic"]["heldout_epe_px"]) >= {"flownet", "zero", "tvl1"}


def test_flownet_finetune_writes_a_loadable_checkpoint(flownet_run):
    _, workdir, report = flownet_run
    finetune = report["finetune"]
    assert finetune["steps"] == 6 and finetune["target_pairs"] == 12
    assert set(finetune["validation_epe_px_vs_tvl1"]) == {
        "flownet",
        "flownet_before_finetune",
        "zero",
    }
    assert (workdir / "lip_flow_targets_train.npz").exists()
    assert not (workdir / pretrain_flownet.PROGRESS_DIR).exists()
    assert json.loads((workdir / pretrain_flownet.FLOWNET_REPORT).read_text())["finetune"]

    model, params = pretrain_flownet.load_flownet_model(workdir / "flownet")
    assert model.width == 0.125
    flows = model.apply({"params": params}, jnp.zeros((3, 64, 64, 6)))
    assert [flow.shape for flow in flows] == [(3, 16, 16, 2), (3, 8, 8, 2), (3, 4, 4, 2),
                                              (3, 2, 2, 2), (3, 1, 1, 2)]  # fmt: skip
    plain = pretrain_flownet.load_flownet(workdir / "flownet")
    assert jax.tree.structure(plain) == jax.tree.structure(params)


def test_flownet_rerun_returns_the_saved_report(flownet_run, monkeypatch):
    config, workdir, report = flownet_run

    def no_training(**kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(pretrain_flownet.loop, "train_resumable", no_training)
    assert pretrain_flownet.run(config, workdir) == report


def test_flownet_resumes_at_stage_granularity(flownet_run, tmp_path, monkeypatch):
    """Killed in stage B: the rerun starts from the saved stage-A result."""
    config, workdir, report = flownet_run
    copy = tmp_path / "workdir"
    shutil.copytree(workdir, copy)
    shutil.rmtree(copy / pretrain_flownet.FLOWNET_CHECKPOINT)
    (copy / pretrain_flownet.FLOWNET_REPORT).unlink()

    def no_stage_a(*args, **kwargs):
        raise AssertionError("stage A ran again")

    monkeypatch.setattr(pretrain_flownet, "_synthetic_stage", no_stage_a)
    rerun = pretrain_flownet.run(config, copy)
    assert rerun["synthetic"] == report["synthetic"]
    assert rerun["finetune"]["targets_cached"]
    assert (copy / pretrain_flownet.FLOWNET_CHECKPOINT).exists()


def test_training_resumes_after_a_kill(tmp_path):
    """A killed stage restarts from its last progress checkpoint and ends where an
    uninterrupted run does."""

    @jax.jit
    def train_step(state, batch):
        (target,) = batch
        loss = jnp.sum(jnp.square(state["w"] - target))
        return {"w": state["w"] - 0.1 * (state["w"] - target)}, loss

    def make_batch(step):
        return (np.random.default_rng(step).standard_normal(3).astype(np.float32),)

    def train(directory, step_fn):
        return loop.train_resumable(
            state={"w": jnp.zeros(3)},
            train_step=step_fn,
            make_batch=make_batch,
            num_steps=10,
            progress_dir=directory,
            description="test",
            log_every=2,
            checkpoint_every=4,
        )

    uninterrupted = train(tmp_path / "a", train_step)

    class KilledError(Exception):
        pass

    def killed_at_step_6(state, batch):
        if np.array_equal(batch[0], make_batch(6)[0]):
            raise KilledError
        return train_step(state, batch)

    with pytest.raises(KilledError):
        train(tmp_path / "b", killed_at_step_6)
    resumed = train(tmp_path / "b", train_step)
    assert resumed.resumed_from == 4
    np.testing.assert_allclose(resumed.state["w"], uninterrupted.state["w"], rtol=1e-6)
    assert resumed.log == uninterrupted.log


# ---------------------------------------------------------------------- perceptual


@pytest.fixture(scope="module")
def perceptual_run(tiny_corpus, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("perceptual")
    config = configs.cpu_sized(configs.base_config())
    config.dataset = "synthetic_lips/tiny"
    config.data_dir = tiny_corpus
    config.perceptual.update(
        {
            "width": 0.125,
            "num_residual_blocks": 2,
            "steps": 40,
            "batch_size": 8,
            "frames_per_utterance": 4,
            "validation_frames": 8,
            "log_every": 10,
        }
    )
    return config, workdir, pretrain_perceptual.run(config, workdir)


def test_perceptual_loss_falls_and_reports_psnr(perceptual_run):
    _, _, report = perceptual_run
    assert report["loss_last"] < 0.8 * report["loss_first"]
    assert 5 < report["validation_psnr_db"] < 60
    assert report["model"]["feature_shape"] == [16, 16, 32]


def test_perceptual_encoder_loads_and_matches_the_autoencoder(perceptual_run):
    _, workdir, _ = perceptual_run
    encoder, variables = pretrain_perceptual.load_perceptual_encoder(workdir / "perceptual")
    frames = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)
    features = encoder.apply(variables, frames, train=False)
    assert features.shape == (2, 16, 16, 32)

    model, full_variables = pretrain_perceptual.load_perceptual_autoencoder(workdir / "perceptual")
    expected = model.apply(full_variables, frames, method=model.encode)
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_perceptual_rerun_returns_the_saved_report(perceptual_run, monkeypatch):
    config, workdir, report = perceptual_run

    def no_training(**kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(pretrain_perceptual, "train_resumable", no_training)
    assert pretrain_perceptual.run(config, workdir) == report


def test_psnr_uint8_has_no_wraparound():
    frames = np.full((1, 4, 4, 3), 10, np.uint8)
    reconstruction = (np.full((1, 4, 4, 3), 12.0) / 127.5) - 1.0  # exactly 12 in uint8 terms
    np.testing.assert_allclose(pretrain_perceptual.psnr_uint8(reconstruction, frames),
                               10 * np.log10(255**2 / 4))  # fmt: skip
