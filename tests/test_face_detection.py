"""Face detection on a real photo at GRID frame size: small faces are found by upsampling,
and false faces are rejected by the layout of their landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from skimage.transform import rescale

from lipjax.data import landmarks

FACE_WIDTH = 88  # dlib's face box in skimage's astronaut photo (a real photo, 512 x 512)


def _grid_frame(face_width: int) -> np.ndarray:
    """The astronaut's head scaled so that dlib's face box is about `face_width` px wide,
    pasted into a grey 360 x 288 frame (GRID's frame size)."""
    grey = (skimage.data.astronaut() @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    head = rescale(grey[20:260, 100:340], face_width / FACE_WIDTH, anti_aliasing=True)
    frame = np.full((288, 360), 90, np.uint8)
    height, width = head.shape
    frame[40 : 40 + height, 120 : 120 + width] = np.rint(head * 255).astype(np.uint8)
    return frame


@pytest.mark.parametrize("face_width", [88, 50, 35])
def test_faces_down_to_35_px_are_found(face_width):
    box = landmarks.DlibLandmarks().detect(_grid_frame(face_width))
    assert box is not None
    assert abs(box.width() - face_width) < 0.3 * face_width
    points = landmarks.DlibLandmarks().detect_landmarks(_grid_frame(face_width))
    assert landmarks.plausible_face(points, box.width())


@pytest.mark.parametrize("face_width", [50, 35])
def test_small_faces_need_the_upsampled_search(face_width):
    # Without it (dlib at upsample 0 only, lipjax before issue 24) these frames were no_face.
    assert landmarks.DlibLandmarks(max_upsample=0).detect(_grid_frame(face_width)) is None


def test_implausible_landmarks_are_rejected():
    frame = _grid_frame(88)
    points = landmarks.DlibLandmarks().detect_landmarks(frame)
    width = 88.0
    assert landmarks.plausible_face(points, width)
    upside_down = points.copy()
    upside_down[:, 1] = 2 * points[:, 1].mean() - points[:, 1]
    assert not landmarks.plausible_face(upside_down, width)
    assert not landmarks.plausible_face(points, width * 4)  # eyes far too close for the box
    collapsed = np.repeat(points.mean(axis=0, keepdims=True), 68, axis=0)
    assert not landmarks.plausible_face(collapsed, width)


def test_no_face_in_noise():
    noise = np.random.default_rng(0).integers(0, 255, (288, 360), np.uint8)
    assert landmarks.DlibLandmarks(max_upsample=2).detect(noise) is None
