"""lipjax.eval.landmark_regressor: shapes, augmentation, training, saving, shipped model."""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import data_pipeline  # noqa: F401  (registers the builders)
from lipjax.eval import landmark_regressor as lr


@pytest.fixture(scope="module")
def tiny_dir(tiny_data_dir):
    return pathlib.Path(tiny_data_dir)


@pytest.fixture(scope="module")
def trained(tiny_dir, tmp_path_factory):
    """A short training run on tiny, saved to a workdir."""
    workdir = tmp_path_factory.mktemp("regressor")
    _, report = lr.train_regressor(
        tiny_dir, "tiny", steps=300, batch_size=8, workdir=workdir, learning_rate=2e-3
    )
    return workdir, report


def test_architecture_is_small_and_shapes_are_right():
    variables = lr.init_regressor(0)
    assert lr.count_parameters(variables) < 1_000_000
    module = lr.LipLandmarkRegressor()
    offsets = jax.eval_shape(module.apply, variables, jnp.zeros((3, 64, 64, 3)))
    assert offsets.shape == (3, 20, 2)
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 64, 64, 3), dtype=np.uint8)
    landmarks = lr.predict_landmarks(variables, frames)
    assert landmarks.shape == (2, 3, 20, 2) and landmarks.dtype == np.float32
    # The output layer starts at zero: every point at the crop centre.
    np.testing.assert_allclose(landmarks, 32.0)
    assert lr.predict_landmarks(variables, frames[0, 0]).shape == (20, 2)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        lr.predict_landmarks(variables, frames.astype(np.float32))
    with pytest.raises(ValueError, match="64, 64, 3"):
        lr.predict_landmarks(variables, np.zeros((2, 32, 32, 3), np.uint8))


def test_uint8_and_float_inputs_agree():
    variables = jax.tree.map(
        lambda leaf: leaf + 0.05 * jax.random.normal(jax.random.key(1), leaf.shape),
        lr.init_regressor(0),
    )
    frames = np.random.default_rng(1).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    as_float = frames.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(
        lr.predict_landmarks(variables, frames),
        lr.predict_landmarks(variables, as_float, batch_size=2),
        atol=1e-4,
    )


def test_augmentation_moves_landmarks_with_the_image():
    # A bright blob at one point: after any augmentation the blob's centroid must be where
    # the augmented landmark says.
    point = np.array([23.3, 38.7])
    centres = np.arange(64) + 0.5
    xx, yy = np.meshgrid(centres, centres)
    blob = np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * 1.5**2))
    frames = np.repeat((40 + 200 * blob)[None, :, :, None], 3, axis=-1).astype(np.uint8)
    frames = np.repeat(frames, 16, axis=0)
    landmarks = np.broadcast_to(point, (16, 20, 2)).astype(np.float32)
    images, moved = jax.jit(lr.augment)(jax.random.key(0), frames, landmarks)
    images, moved = np.asarray(images).mean(axis=-1), np.asarray(moved)
    assert images.shape == (16, 64, 64) and images.min() >= -1 and images.max() <= 1
    np.testing.assert_allclose(
        moved, np.broadcast_to(moved[:, :1], moved.shape), atol=1e-5
    )  # all points alike
    assert np.abs(moved[:, 0] - point).max() > 1.0  # it did move them
    for image, target in zip(images, moved[:, 0], strict=True):
        weights = np.clip(image - np.median(image), 0, None)
        weights = np.where(weights > 0.4 * weights.max(), weights, 0)
        centroid = np.array([(weights * xx).sum(), (weights * yy).sum()]) / weights.sum()
        np.testing.assert_allclose(centroid, target, atol=0.35)


def test_gaussian_blur_keeps_flat_images_and_sigma_zero():
    images = jax.random.uniform(jax.random.key(0), (2, 64, 64, 3), minval=-1, maxval=1)
    unblurred = lr._gaussian_blur(images, jnp.zeros(2))
    np.testing.assert_allclose(unblurred, images, atol=1e-6)
    flat = jnp.full((1, 64, 64, 3), 0.3)
    np.testing.assert_allclose(lr._gaussian_blur(flat, jnp.array([1.5])), 0.3, atol=1e-6)
    blurred = lr._gaussian_blur(images, jnp.array([1.0, 2.0]))
    assert float(blurred[1].std()) < float(blurred[0].std()) < float(images.std())


def test_short_training_lowers_the_loss_and_writes_a_report(trained):
    workdir, report = trained
    losses = [loss for _, loss in report["train_l1_px"]]
    assert report["steps"] == 300 and len(losses) >= 6
    assert np.mean(losses[-2:]) < 0.5 * losses[0]
    for split in ("validation", "test"):
        assert report[split]["per_point_error_px"] < losses[0]
        assert report[split]["num_clips"] > 0
    saved = json.loads((workdir / lr.REPORT_NAME).read_text())
    assert saved["test"] == report["test"]
    assert (workdir / lr.CHECKPOINT_NAME).is_dir()


def test_save_and_load_give_identical_predictions(trained, tiny_dir, tmp_path):
    workdir, _ = trained
    variables = lr.load_regressor(workdir / lr.CHECKPOINT_NAME)
    frames = lr.load_split(tiny_dir, "tiny", "test")[0]["frames"][:8]
    before = lr.predict_landmarks(variables, frames)
    again = lr.load_regressor(lr.save_regressor(variables, tmp_path / "copy"))
    np.testing.assert_array_equal(lr.predict_landmarks(again, frames), before)
    jax.tree.map(np.testing.assert_array_equal, again, variables)


def test_shipped_regressor_finds_landmarks_of_unseen_speakers(tiny_dir):
    assert lr.shipped_regressor_path().is_dir()
    variables = lr.load_regressor()
    assert lr.count_parameters(variables) < 1_000_000
    errors = []
    for utterance in lr.load_split(tiny_dir, "tiny", "test"):
        frames, true = utterance["frames"][::4], utterance["landmarks"][::4]
        predicted = lr.predict_landmarks(variables, frames)
        errors.append(np.linalg.norm(predicted - true, axis=-1).mean())
    assert np.mean(errors) < 0.5
