"""Tests of the synthetic lower-face renderer: API, geometry, pixels against landmarks."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from matplotlib.path import Path

from data_pipeline.synthetic_lips import render

SIZE = 128
LUMA = np.array([0.299, 0.587, 0.114])
REST = [0, 0, 0, 0, 0, 0, 0]
WIDE_OPEN = [1, 0, 0, 0, 0, 0, 0]
CLOSED = [0.8, 0.3, 0, 0, 1, 0.5, 0.5]  # closure overrides everything that opens the lips
EXTREMES = [
    REST,
    WIDE_OPEN,
    CLOSED,
    [0.3, 1, 0, 0, 0, 0, 0],  # ee
    [0.2, -1, 1, 1, 0, 0, 0],  # oo
    [0.1, 0, 0, 0, 0, 1, 0],  # f
    [0.2, 0.2, 0, 0, 0, 0, 1],  # th
    [1, 1, 1, 1, 0, 1, 1],  # everything at once
]
OUTER, INNER = slice(0, 12), slice(12, 20)
INNER_UPPER, INNER_LOWER_REVERSED = [13, 14, 15], [19, 18, 17]  # 61..63 face 67..65


def _render(articulation, appearance=None, poses=None, size=SIZE, seed=0, **kwargs):
    articulation = np.asarray(articulation, np.float32).reshape(-1, 7)
    n = len(articulation)
    kwargs.setdefault("noise_std", 0.0)
    kwargs.setdefault("blur_sigma", 0.0)
    return render.render_video(
        appearance or render.Appearance(),
        articulation,
        poses or [render.HeadPose()] * n,
        [render.Lighting()] * n,
        np.random.default_rng(seed),
        size=size,
        **kwargs,
    )


def _pixel(frame, point):
    """The pixel that contains the continuous point (x, y)."""
    return frame[int(np.floor(point[1])), int(np.floor(point[0]))].astype(float)


def _inside(polygon, size=SIZE):
    """Mask of the pixels whose centres lie inside the polygon (K, 2)."""
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    points = np.stack([xs.ravel(), ys.ravel()], axis=-1)
    return Path(polygon).contains_points(points).reshape(size, size)


def _sampled_appearances(count):
    return [render.sample_appearance(np.random.default_rng(seed)) for seed in range(count)]


def test_shapes_and_dtypes():
    frames, landmarks = _render([REST, WIDE_OPEN, CLOSED])
    assert frames.shape == (3, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert landmarks.shape == (3, render.NUM_MOUTH_LANDMARKS, 2)
    assert landmarks.dtype == np.float32
    frames, landmarks = _render([REST], size=96)
    assert frames.shape == (1, 96, 96, 3) and landmarks.shape == (1, 20, 2)
    frames, landmarks = _render(np.zeros((0, 7)))
    assert frames.shape == (0, SIZE, SIZE, 3) and landmarks.shape == (0, 20, 2)


def test_same_inputs_and_seed_give_identical_arrays():
    appearance = render.sample_appearance(np.random.default_rng(3))
    poses, lightings = render.sample_motion(np.random.default_rng(1), len(EXTREMES))
    articulation = np.array(EXTREMES, np.float32)

    def run(seed):
        rng = np.random.default_rng(seed)
        return render.render_video(appearance, articulation, poses, lightings, rng)

    (frames_a, landmarks_a), (frames_b, landmarks_b) = run(7), run(7)
    np.testing.assert_array_equal(frames_a, frames_b)
    np.testing.assert_array_equal(landmarks_a, landmarks_b)
    frames_c, landmarks_c = run(8)  # only the pixel noise depends on the rng
    assert not np.array_equal(frames_a, frames_c)
    np.testing.assert_array_equal(landmarks_a, landmarks_c)


@pytest.mark.parametrize("appearance", [*_sampled_appearances(4), render.Appearance()])
def test_landmark_order_and_nesting(appearance):
    _, landmarks = _render(EXTREMES, appearance)
    for points in landmarks:
        left_corner, top_centre, right_corner, bottom_centre = (
            points[0], points[3], points[6], points[9]
        )  # fmt: skip
        assert left_corner[0] < top_centre[0] < right_corner[0]
        assert top_centre[1] < bottom_centre[1]
        assert np.all(np.diff(points[0:7, 0]) > 0)  # 48..54 left to right
        assert np.all(np.diff(points[6:12, 0]) < 0)  # 54..59 right to left
        assert np.all(np.diff(points[12:17, 0]) > 0)  # 60..64 left to right
        assert np.all(np.diff(points[16:20, 0]) < 0)  # 64..67 right to left
        assert np.all(points[INNER_UPPER, 1] <= points[INNER_LOWER_REVERSED, 1])
        assert Path(points[OUTER]).contains_points(points[INNER]).all()
        # About 40-50 px at rest, narrower when rounded, wider when spread.
        assert 20.0 < right_corner[0] - left_corner[0] < 65.0


def test_closure_gives_zero_gap_and_no_cavity():
    appearance = render.Appearance()
    frames, landmarks = _render([CLOSED], appearance)
    points = landmarks[0]
    np.testing.assert_array_equal(points[INNER_UPPER], points[INNER_LOWER_REVERSED])
    mouth = _inside(points[OUTER])
    assert mouth.sum() > 200
    luma = frames[0].astype(float) @ LUMA
    lip_luma = np.dot(appearance.lip_rgb, LUMA)
    assert luma[mouth].min() > 0.45 * lip_luma, "dark cavity pixels in a closed mouth"


def test_wide_open_shows_a_dark_cavity():
    appearance = render.Appearance()
    frames, landmarks = _render([WIDE_OPEN], appearance)
    points = landmarks[0]
    gap = points[18, 1] - points[14, 1]  # 66 below 62
    assert gap > 15.0
    cavity = _inside(points[INNER])
    luma = frames[0].astype(float) @ LUMA
    dark = luma[cavity] < 0.4 * np.dot(appearance.lip_rgb, LUMA)
    assert dark.mean() > 0.25  # the rest is teeth and tongue
    assert luma[cavity].max() > 150  # teeth are visible


@pytest.mark.parametrize("articulation", [REST, WIDE_OPEN, [0.5, 0, 0, 0, 0, 0, 0], CLOSED])
def test_pixels_agree_with_landmarks(articulation):
    appearance = render.Appearance()
    lip, skin = np.array(appearance.lip_rgb), np.array(appearance.skin_rgb)
    frames, landmarks = _render([articulation], appearance, blur_sigma=0.6, noise_std=2.0)
    frame, points = frames[0], landmarks[0]

    def is_lip(point):
        colour = _pixel(frame, point)
        return np.linalg.norm(colour - lip) < np.linalg.norm(colour - skin)

    assert is_lip((points[3] + points[14]) / 2)  # between 51 and 62: the upper lip
    assert is_lip((points[9] + points[18]) / 2)  # between 57 and 66: the lower lip
    assert not is_lip(points[9] + [0.0, 3.0])  # just below 57: skin
    assert not is_lip(points[3] - [0.0, 3.0])  # just above 51: skin
    assert not is_lip(points[0] - [3.0, 0.0])  # left of the corner 48: skin
    assert not is_lip(points[6] + [3.0, 0.0])  # right of the corner 54: skin


def test_head_pose_moves_landmarks_like_a_similarity_transform():
    articulation = [WIDE_OPEN, [0.3, 1, 0, 0, 0, 0, 0]]
    _, reference = _render(articulation)
    pose = render.HeadPose(rotation_deg=8.0, dx=3.5, dy=-2.0, scale=1.05)
    _, moved = _render(articulation, poses=[pose] * 2)
    angle = np.radians(pose.rotation_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([SIZE / 2, SIZE / 2])
    expected = centre + pose.scale * (reference - centre) @ rotation.T + [pose.dx, pose.dy]
    np.testing.assert_allclose(moved, expected, atol=1e-3)
    # Positive rotation is clockwise on screen (y down): the right corner drops below the left.
    corner_drop = moved[:, 6, 1] - moved[:, 0, 1] - (reference[:, 6, 1] - reference[:, 0, 1])
    assert np.all(corner_drop > 4.0)


def test_integer_translation_shifts_the_pixels():
    appearance = render.sample_appearance(np.random.default_rng(2))
    frames, _ = _render([WIDE_OPEN], appearance)
    shifted, _ = _render([WIDE_OPEN], appearance, poses=[render.HeadPose(dx=5.0, dy=-3.0)])
    diff = np.abs(shifted[0, 10:-10, 10:-10].astype(int) - frames[0, 13:-7, 5:-15].astype(int))
    assert diff.max() <= 1


def test_larger_frames_scale_the_geometry():
    _, small = _render([WIDE_OPEN])
    _, large = _render([WIDE_OPEN], size=2 * SIZE)
    np.testing.assert_allclose(large, 2.0 * small, atol=1e-3)


def test_appearances_look_different():
    appearances = _sampled_appearances(6)
    frames = [_render([REST], appearance)[0][0].astype(float) for appearance in appearances]
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            mean_colour_difference = np.abs(frames[i].mean((0, 1)) - frames[j].mean((0, 1)))
            pixel_difference = np.abs(frames[i] - frames[j]).mean()
            assert mean_colour_difference.max() > 3.0 or pixel_difference > 10.0


def test_sample_appearance_is_diverse_and_serialisable():
    appearances = _sampled_appearances(300)
    skin_luma = np.array([np.dot(a.skin_rgb, LUMA) for a in appearances])
    assert skin_luma.min() < 80 and skin_luma.max() > 180
    hairy = np.mean([a.facial_hair != "none" for a in appearances])
    assert 0.2 < hairy < 0.4
    assert {a.facial_hair for a in appearances} == set(render.FACIAL_HAIR_STYLES)
    widths = np.array([2 * a.mouth_half_width for a in appearances])
    assert widths.min() > 38.0 and widths.max() < 52.0
    for appearance in appearances[:5]:
        restored = render.Appearance(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in appearance.to_dict().items()}
        )
        assert restored == appearance
        json.dumps(appearance.to_dict())
    assert render.sample_appearance(np.random.default_rng(9)) == appearances[9]


def test_sample_motion_is_small_and_smooth():
    poses, lightings = render.sample_motion(np.random.default_rng(0), 300)
    assert len(poses) == len(lightings) == 300
    for seed in range(20):
        poses, lightings = render.sample_motion(np.random.default_rng(seed), 75)
        rotation = np.array([p.rotation_deg for p in poses])
        shift = np.array([[p.dx, p.dy] for p in poses])
        scale = np.array([p.scale for p in poses])
        gain = np.array([light.gain for light in lightings])
        assert np.abs(rotation).max() <= 4.0 and np.abs(shift).max() <= 4.0
        assert np.all(np.abs(scale - 1.0) <= 0.05) and np.all((gain >= 0.8) & (gain <= 1.2))
        assert np.abs(np.diff(rotation)).max() < 0.5 and np.abs(np.diff(shift, axis=0)).max() < 0.6
    assert render.sample_motion(np.random.default_rng(4), 10) == render.sample_motion(
        np.random.default_rng(4), 10
    )


def test_crop_box_stays_inside_the_frame():
    for seed in range(8):
        rng = np.random.default_rng(seed)
        appearance = render.sample_appearance(rng)
        poses, _ = render.sample_motion(rng, len(EXTREMES))
        _, landmarks = _render(EXTREMES, appearance, poses=poses)
        low, high = landmarks.min(axis=1), landmarks.max(axis=1)
        centre, half_size = (low + high) / 2, 0.65 * (high - low).max(axis=1, keepdims=True)
        assert np.all(centre - half_size >= 4.0) and np.all(centre + half_size <= SIZE - 4.0)


def test_frames_change_smoothly_with_the_articulation():
    articulation = np.zeros((40, 7), np.float32)
    articulation[:, 0] = np.linspace(0.0, 1.0, 40)  # opening
    articulation[:, 1] = np.linspace(-0.5, 0.5, 40)  # and spreading
    frames, _ = _render(articulation)
    steps = np.abs(np.diff(frames.astype(float), axis=0)).mean(axis=(1, 2, 3))
    assert steps.max() < 0.5 and steps.max() < 2.5 * np.median(steps)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"articulation": np.zeros((3, 6))}, "articulation"),
        ({"articulation": np.zeros(7)}, "articulation"),
        ({"articulation": np.full((3, 7), np.nan)}, "articulation"),
        ({"poses": [render.HeadPose()] * 2}, "poses"),
        ({"lightings": [render.Lighting()] * 4}, "lightings"),
        ({"size": 32}, "size"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"blur_sigma": -0.5}, "blur_sigma"),
    ],
)
def test_invalid_arguments_raise(kwargs, argument):
    arguments = {
        "appearance": render.Appearance(),
        "articulation": np.zeros((3, 7), np.float32),
        "poses": [render.HeadPose()] * 3,
        "lightings": [render.Lighting()] * 3,
        "rng": np.random.default_rng(0),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        render.render_video(**arguments)


def test_invalid_facial_hair_style_raises():
    with pytest.raises(ValueError, match="facial_hair"):
        render.Appearance(facial_hair="sideburns")


def test_renders_a_three_second_video_quickly():
    appearance = render.sample_appearance(np.random.default_rng(3))
    poses, lightings = render.sample_motion(np.random.default_rng(0), 75)
    articulation = np.tile(np.array(EXTREMES, np.float32), (10, 1))[:75]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    render.render_video(appearance, articulation, poses, lightings, rng)
    # About 0.3 s on one core; the bound only catches per-pixel Python loops.
    assert time.perf_counter() - start < 5.0
