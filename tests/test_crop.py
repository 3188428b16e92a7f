"""The lip-crop rule (docs/design.md, "Lip crops")."""

import numpy as np
import pytest

from lipjax.data import crop


def _mouth(cx=50.0, cy=40.0, half_w=20.0, half_h=8.0, frames=1):
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    points = np.stack([cx + half_w * np.cos(angles), cy + half_h * np.sin(angles)], axis=-1)
    return np.repeat(points[None], frames, axis=0)


def test_box_rule():
    centres, half_sizes = crop.mouth_boxes(_mouth())
    np.testing.assert_allclose(centres[0], [50.0, 40.0], atol=1e-9)
    width = np.ptp(_mouth()[0, :, 0])
    np.testing.assert_allclose(half_sizes[0], 0.65 * width)


def test_crop_samples_the_right_place_and_maps_landmarks():
    # An image whose pixel values encode their own coordinates.
    height, width = 100, 120
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)
    landmarks = _mouth(cx=60.0, cy=50.0, half_w=24.0, half_h=10.0)
    crops, crop_landmarks = crop.crop_video(frame[None], landmarks, size=64)
    _, half_sizes = crop.mouth_boxes(landmarks)
    r = half_sizes[0]
    # Output pixel j's centre sits at x = cx - r + (j + 0.5) * 2r / 64; pixel values are
    # array indices, i.e. x - 0.5.
    expected_x = 60.0 - r + (np.arange(64) + 0.5) * 2 * r / 64 - 0.5
    np.testing.assert_allclose(crops[0, 32, :, 0], expected_x, atol=1.0)
    expected_y = 50.0 - r + (np.arange(64) + 0.5) * 2 * r / 64 - 0.5
    np.testing.assert_allclose(crops[0, :, 32, 1], expected_y, atol=1.0)
    # Landmarks: the box centre maps to the crop centre, extremes to +-width/(2r)*32.
    np.testing.assert_allclose(crop_landmarks[0].mean(axis=0), [32.0, 32.0], atol=1e-4)
    np.testing.assert_allclose(crop_landmarks[0, :, 0].max(), 32 + 24 / r * 32, atol=1e-4)


def test_downscaling_is_antialiased():
    stripes = np.zeros((400, 400, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes alias badly without a pre-filter
    landmarks = _mouth(cx=200, cy=200, half_w=150, half_h=50)
    crops, _ = crop.crop_video(stripes[None], landmarks)
    assert abs(crops.mean() - 127.5) < 10
    assert crops.std() < 20


def test_smoothing_reduces_jitter():
    rng = np.random.default_rng(0)
    landmarks = _mouth(frames=50) + rng.normal(0, 1.0, size=(50, 1, 2))
    raw, _ = crop.mouth_boxes(landmarks)
    smoothed, _ = crop.smooth_boxes(*crop.mouth_boxes(landmarks), window=5)
    jitter = lambda c: np.linalg.norm(np.diff(c, axis=0), axis=1).mean()  # noqa: E731
    assert jitter(smoothed) < 0.5 * jitter(raw)


@pytest.mark.parametrize(
    ("frames", "landmarks", "message"),
    [
        (np.zeros((2, 50, 50), np.uint8), _mouth(frames=2), "frames"),
        (np.zeros((2, 50, 50, 3), np.uint8), _mouth(frames=3), "mouth_landmarks"),
        (np.zeros((1, 50, 50, 3), np.uint8), np.zeros((1, 68, 2)), "mouth_landmarks"),
        (np.zeros((1, 50, 50, 3), np.uint8), np.full((1, 20, 2), np.nan), "NaN"),
    ],
)
def test_bad_inputs(frames, landmarks, message):
    with pytest.raises(ValueError, match=message):
        crop.crop_video(frames, landmarks)
