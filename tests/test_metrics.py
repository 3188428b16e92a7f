"""lipjax.eval.metrics against values known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from lipjax.eval import metrics


def _random_frames(shape, seed=0, low=0, high=256) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=shape, dtype=np.uint8)


def _smooth_frames(shape, seed=0) -> np.ndarray:
    """Natural-ish images: blurred noise, so that SSIM is neither ~0 nor ~1."""
    noise = np.random.default_rng(seed).normal(size=shape)
    blurred = scipy.ndimage.gaussian_filter(noise, sigma=(0,) * (len(shape) - 3) + (2, 2, 0))
    blurred = (blurred - blurred.mean()) / blurred.std()
    return np.clip(128 + 40 * blurred, 0, 255).astype(np.uint8)


# PSNR


def test_psnr_identical_frames_are_inf_per_frame_and_capped_in_the_mean():
    frames = _random_frames((4, 16, 16, 3))
    assert np.all(np.isinf(metrics.psnr_per_frame(frames, frames)))
    assert metrics.psnr(frames, frames) == metrics.PSNR_CAP_DB == 100.0
    assert metrics.psnr(frames, frames, cap_db=60.0) == 60.0


def test_psnr_of_a_uniform_offset():
    real = _random_frames((3, 8, 8, 3), high=250)
    fake = real + np.uint8(5)  # no value reaches 256: no clipping, no wrap-around
    expected = 20 * np.log10(255 / 5)
    np.testing.assert_allclose(metrics.psnr_per_frame(real, fake), expected, rtol=1e-12)
    np.testing.assert_allclose(metrics.psnr(real, fake), expected, rtol=1e-12)
    np.testing.assert_allclose(metrics.psnr(fake, real), expected, rtol=1e-12)


def test_psnr_of_plus_minus_noise():
    real = np.full((2, 6, 6, 3), 100, np.uint8)
    signs = np.where(np.indices((6, 6)).sum(axis=0) % 2 == 0, 3, -3)[None, :, :, None]
    fake = (real.astype(int) + signs).astype(np.uint8)
    np.testing.assert_allclose(metrics.psnr(real, fake), 20 * np.log10(255 / 3), rtol=1e-12)


def test_psnr_does_not_wrap_around_uint8():
    black = np.zeros((1, 8, 8, 3), np.uint8)
    white = np.full((1, 8, 8, 3), 255, np.uint8)
    # uint8 arithmetic would give 0 - 255 = 1, i.e. MSE 1 and 48.1 dB.
    assert metrics.psnr(black, white) == pytest.approx(0.0, abs=1e-12)
    # Half the frame wrong by 255: MSE = 255^2 / 2 -> 10 log10(2) dB.
    half = black.copy()
    half[:, :4] = 255
    assert metrics.psnr(black, half) == pytest.approx(10 * np.log10(2), rel=1e-12)


def test_psnr_average_over_frames_and_batch_shapes():
    real = _random_frames((2, 3, 8, 8, 3), high=250)
    fake = real.copy()
    fake[0, 1] += 5
    per_frame = metrics.psnr_per_frame(real, fake)
    assert per_frame.shape == (2, 3)
    assert per_frame[0, 1] == pytest.approx(20 * np.log10(51))
    expected = (5 * 100.0 + 20 * np.log10(51)) / 6
    assert metrics.psnr(real, fake) == pytest.approx(expected)


def test_image_metrics_reject_float_and_mismatched_frames():
    frames = _random_frames((2, 8, 8, 3))
    with pytest.raises(TypeError, match="uint8"):
        metrics.psnr(frames.astype(np.float32), frames)
    with pytest.raises(ValueError, match="shape"):
        metrics.ssim(frames, frames[:1])


def test_to_uint8():
    np.testing.assert_array_equal(
        metrics.to_uint8(np.array([-1.0, -2.0, 0.0, 1.0, 3.0])), [0, 0, 128, 255, 255]
    )


def test_grey_levels_of_the_paper_protocol_are_opencvs_and_shape_independent():
    # Every colour: OpenCV's fixed-point BT.601 (COLOR_BGR2GRAY), within one level of the
    # float luma rounded, whatever shape the frames come in.
    rgb = np.stack(np.meshgrid(*[np.arange(256)] * 3, indexing="ij"), axis=-1)
    rgb = rgb.reshape(256, 256 * 256, 3).astype(np.uint8)
    grey = metrics._grey_uint8(rgb)[..., 0].astype(int)
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    np.testing.assert_array_equal(grey, (4899 * r + 9617 * g + 1868 * b + 8192) // 16384)
    float_luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(grey - float_luma).max() <= 0.51  # fixed-point weights: at most 0.006 off
    assert sum(metrics.OPENCV_GREY_WEIGHTS) == 1 << metrics.OPENCV_GREY_SHIFT
    sample = rgb[::7, ::97]
    for shape in [(-1, 1, 1, 3), (1, -1, 3), (2, -1, 1, 3)]:
        np.testing.assert_array_equal(
            metrics._grey_uint8(sample.reshape(shape)).reshape(-1), grey[::7, ::97].reshape(-1)
        )


# SSIM


def _reference_ssim(real: np.ndarray, fake: np.ndarray) -> float:
    """SSIM of one grey image pair written out from Wang et al. 2004 (Gaussian window,
    sigma 1.5, radius 5, population statistics), mean over the valid region."""
    x, y = real.astype(np.float64), fake.astype(np.float64)

    def blur(image):
        return scipy.ndimage.gaussian_filter(image, sigma=1.5, truncate=3.5)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map[5:-5, 5:-5].mean())


def test_ssim_identical_frames_is_one():
    frames = _smooth_frames((3, 32, 32, 3))
    assert metrics.ssim(frames, frames) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(frames, frames, grey=True) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    # With no variance SSIM = (2ab + C1) / (a^2 + b^2 + C1) everywhere.
    c1 = (0.01 * 255) ** 2
    real = np.empty((1, 24, 24, 3), np.uint8)
    fake = np.empty_like(real)
    real[...] = [100, 50, 200]
    fake[...] = [120, 50, 160]
    per_channel = [
        (2 * a * b + c1) / (a * a + b * b + c1) for a, b in [(100, 120), (50, 50), (200, 160)]
    ]
    assert metrics.ssim(real, fake) == pytest.approx(np.mean(per_channel), rel=1e-9)
    luma = np.array([0.299, 0.587, 0.114])
    a, b = luma @ [100, 50, 200], luma @ [120, 50, 160]
    grey_expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert metrics.ssim(real, fake, grey=True) == pytest.approx(grey_expected, rel=1e-9)


def test_ssim_matches_the_formula_of_wang_et_al_per_channel():
    real = _smooth_frames((2, 40, 40, 3), seed=1)
    noise = np.random.default_rng(2).normal(0, 20, real.shape)
    fake = np.clip(real + noise, 0, 255).astype(np.uint8)
    per_frame = metrics.ssim_per_frame(real, fake)
    assert per_frame.shape == (2,)
    for t in range(2):
        expected = np.mean([_reference_ssim(real[t, ..., c], fake[t, ..., c]) for c in range(3)])
        assert per_frame[t] == pytest.approx(expected, abs=1e-6)
    assert 0.2 < metrics.ssim(real, fake) < 0.95
    assert metrics.ssim(real, fake) == pytest.approx(per_frame.mean())


def test_grey_ssim_ignores_a_colour_shift_that_keeps_the_luma():
    real = np.clip(_smooth_frames((1, 32, 32, 3), seed=3), 40, 215)
    # Red up 10, green down 10 * 0.299 / 0.587 (about 5.09, rounded to 5): the BT.601 luma
    # changes by 0.055 grey levels only, but each colour channel is offset.
    fake = (real.astype(int) + np.array([10, -5, 0])).astype(np.uint8)
    assert metrics.ssim(real, fake, grey=True) > 0.9999
    assert metrics.ssim(real, fake) < 0.999


# LMD


def _mouth(T=16, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.stack(
        [
            32 + 15 * np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
            32 + 8 * np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
        ],
        axis=-1,
    )
    return base[None] + rng.normal(0, 1.0, (T, 20, 2))


def test_lmd_of_identical_and_of_translated_landmarks_is_zero():
    real = _mouth()
    assert metrics.landmark_distance(real, real) == 0.0
    shifts = np.random.default_rng(1).normal(0, 5, (16, 1, 2))  # a different shift per frame
    assert metrics.landmark_distance(real, real + shifts) == pytest.approx(0.0, abs=1e-12)
    assert metrics.mean_point_error(real, real + np.array([3.0, 4.0])) == pytest.approx(5.0)


def test_lmd_of_one_point_moved_by_three_pixels():
    # Point k moves by d (|d| = 3) in every frame; the mean moves by d / 20. After the
    # calibration point k is off by 3 * 19/20 and each of the other 19 points by 3/20:
    # LMD = (3 * 19/20 + 19 * 3/20) / 20 = 2 * 3 * 19 / 400 = 0.285.
    real = _mouth()
    fake = real.copy()
    fake[:, 7] += [3 * 0.6, 3 * 0.8]
    assert metrics.landmark_distance(real, fake) == pytest.approx(2 * 3 * 19 / 400, rel=1e-12)
    assert metrics.mean_point_error(real, fake) == pytest.approx(3 / 20, rel=1e-12)


def test_lmd_scales_with_the_landmarks():
    real, fake = _mouth(seed=0), _mouth(seed=1)
    lmd = metrics.landmark_distance(real, fake)
    assert lmd > 0
    assert metrics.landmark_distance(2.5 * real, 2.5 * fake) == pytest.approx(2.5 * lmd)
    # A mouth scaled by s about its own mean: every point is off by |s - 1| times its
    # distance to the mean.
    centred = real - real.mean(axis=1, keepdims=True)
    scaled = real.mean(axis=1, keepdims=True) + 1.1 * centred
    expected = 0.1 * np.linalg.norm(centred, axis=-1).mean()
    assert metrics.landmark_distance(real, scaled) == pytest.approx(expected, rel=1e-12)


def test_lmd_averages_over_frames_and_is_per_clip_for_batches():
    real = _mouth(T=4)
    fake = real.copy()
    fake[0, 7] += [3.0, 0.0]  # only frame 0 of 4 differs
    assert metrics.landmark_distance(real, fake) == pytest.approx(0.285 / 4, rel=1e-12)
    batch_real = np.stack([real, real, real])
    batch_fake = np.stack([real, fake, real + 1.0])
    per_clip = metrics.landmark_distance(batch_real, batch_fake)
    assert per_clip.shape == (3,)
    np.testing.assert_allclose(per_clip, [0.0, 0.285 / 4, 0.0], atol=1e-12)


def test_lmd_rejects_bad_shapes_and_nan():
    real = _mouth()
    with pytest.raises(ValueError, match="shape"):
        metrics.landmark_distance(real, real[:-1])
    with pytest.raises(ValueError, match=r"\(T, P, 2\)"):
        metrics.landmark_distance(real[0], real[0])
    bad = real.copy()
    bad[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.landmark_distance(real, bad)


def _opening_mouth(gaps: np.ndarray) -> np.ndarray:
    """A still mouth whose three inner-lip pairs are `gaps[t]` pixels apart in frame t."""
    mouth = np.repeat(_mouth(T=1, seed=3), len(gaps), axis=0)
    for upper, lower in metrics.INNER_LIP_PAIRS:
        mouth[:, lower] = mouth[:, upper] + np.stack([np.zeros_like(gaps), gaps], axis=-1)
    return mouth


def test_mouth_opening_is_the_inner_lip_gap():
    gaps = np.array([0.0, 2.0, 5.5, 1.0])
    np.testing.assert_allclose(metrics.mouth_opening(_opening_mouth(gaps)), gaps, atol=1e-12)
    assert metrics.mouth_opening(np.stack([_opening_mouth(gaps)] * 2)).shape == (2, 4)
    with pytest.raises(ValueError, match="20, 2"):
        metrics.mouth_opening(np.zeros((4, 68, 2)))


def test_opening_correlation_in_phase_out_of_phase_and_still():
    t = np.arange(16)
    real = _opening_mouth(3 + 2 * np.sin(t))
    # The same rhythm at a third of the amplitude, shifted: correlation is about phase.
    assert metrics.opening_correlation(real, _opening_mouth(1 + 0.7 * np.sin(t))) == (
        pytest.approx(1.0)
    )
    assert metrics.opening_correlation(real, _opening_mouth(3 - 2 * np.sin(t))) == (
        pytest.approx(-1.0)
    )
    still = _opening_mouth(np.full(16, 3.0))
    assert metrics.opening_correlation(real, still) == 0.0  # the static baseline
    # A quarter period out of step: sin against cos over whole periods is uncorrelated.
    u = np.arange(16) * 2 * np.pi / 8
    half = metrics.opening_correlation(_opening_mouth(3 + np.sin(u)), _opening_mouth(3 + np.cos(u)))
    assert half == pytest.approx(0.0, abs=1e-12)
    per_clip = metrics.opening_correlation(np.stack([real, real]), np.stack([real, still]))
    np.testing.assert_allclose(per_clip, [1.0, 0.0], atol=1e-12)


# CPBD


def _stripes(profile, contrast: float, size: int = 64, period: int = 16) -> np.ndarray:
    """A grey image of vertical stripes whose rising and falling edges follow `profile`
    (values from 0 to 1 across the edge), from 0 to `contrast` grey levels: every edge has
    width len(profile) - 1 by Marziliano's measure."""
    profile = np.asarray(profile, np.float64)
    width = len(profile) - 1
    plateau = (period - 2 * width) // 2
    row = np.concatenate(
        [np.zeros(plateau), profile[1:], np.ones(plateau), profile[::-1][1:]]
    ).astype(np.float64)
    row = np.tile(row, size // len(row) + 1)[:size]
    return np.rint(np.tile(contrast * row, (size, 1)))


def _p_blur(width: float, jnb: float) -> float:
    return 1 - np.exp(-((width / jnb) ** metrics.CPBD_BETA))


@pytest.mark.parametrize(
    ("profile", "contrast", "expected"),
    [
        # Width 2 at high contrast (w_JNB = 3): P_blur = 0.21 <= 63%: every edge sharp.
        ([0, 0.3, 1], 200, 1.0),
        # Width 3 at high contrast: P_blur = 1 - e^-1 = 0.632, 63% once rounded: sharp.
        ([0, 0.2, 0.75, 1], 200, 1.0),
        # Width 4 at high contrast: P_blur = 0.94: every edge blurred.
        ([0, 0.15, 0.5, 0.85, 1], 200, 0.0),
        # Width 4 at contrast 40 <= 50 (w_JNB = 5): P_blur = 0.36: sharp again.
        ([0, 0.15, 0.5, 0.85, 1], 40, 1.0),
        # Width 6 at contrast 40: P_blur = 0.86: blurred.
        ([0, 0.07, 0.25, 0.5, 0.75, 0.93, 1], 40, 0.0),
    ],
)
def test_cpbd_of_edges_of_known_width_and_contrast(profile, contrast, expected):
    assert _p_blur(3, 3) == pytest.approx(0.632, abs=1e-3)  # the 63% boundary
    image = _stripes(profile, contrast)
    widths = metrics._horizontal_edge_widths(image[None], metrics._sobel_edges(image[None]))[0]
    measured = widths[widths > 0]
    assert measured.size > 50
    np.testing.assert_array_equal(measured, len(profile) - 1)
    assert metrics.cpbd_of_grey(image) == expected


def test_cpbd_of_a_flat_image_is_zero_and_small_images_are_refused():
    assert metrics.cpbd_of_grey(np.full((64, 64), 128.0)) == 0.0
    with pytest.raises(ValueError, match="64 x 64"):
        metrics.cpbd_of_grey(np.zeros((32, 64)))
    with pytest.raises(ValueError, match="uint8 RGB"):
        metrics.cpbd_per_frame(np.zeros((64, 64, 3), np.float32))


# CPBD of the release's Python port (pip package cpbd 1.0.7, itself within about 0.02 of
# the authors' MATLAB on the LIVE images) on grey skimage.data images, sharp and after a
# Gaussian blur of sigma 1 (grey levels rounded), measured once with that package.
_REFERENCE_CPBD = {
    "camera": (0.748, 0.348),
    "coins": (0.765, 0.320),
    "grass": (0.659, 0.250),
    "rocket": (0.847, 0.595),
    "chelsea": (0.526, 0.188),
}


@pytest.mark.parametrize("name", sorted(_REFERENCE_CPBD))
def test_cpbd_on_known_images_is_near_the_reference_and_falls_with_blur(name):
    import skimage.data

    image = getattr(skimage.data, name)()
    rgb = image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    grey = metrics.grey_levels(rgb)
    sharp, blurred = [
        metrics.cpbd_of_grey(np.rint(scipy.ndimage.gaussian_filter(grey, s)) if s else grey)
        for s in (0, 1)
    ]
    reference_sharp, reference_blurred = _REFERENCE_CPBD[name]
    assert sharp == pytest.approx(reference_sharp, abs=0.04)
    assert blurred == pytest.approx(reference_blurred, abs=0.08)
    assert sharp > blurred + 0.15


def test_cpbd_of_lip_crops_falls_with_blur():
    # A lip-like 64 x 64 frame: a dark mouth on skin, edges blurred by sigma 0, 0.7 and 1
    # (CPBD about 0.95, 0.5 and 0: at sigma 1 every edge is wider than 3 pixels).
    yy, xx = np.mgrid[:64, :64]
    mouth = ((xx - 32) / 20.0) ** 2 + ((yy - 34) / 8.0) ** 2 < 1
    noise = np.random.default_rng(0).normal(0, 3, (64, 64, 1))
    frame = np.where(mouth[..., None], [120, 40, 50], [200, 150, 130]) + noise
    scores = []
    for sigma in (0, 0.7, 1.0):
        blurred = scipy.ndimage.gaussian_filter(frame, (sigma, sigma, 0)) if sigma else frame
        clip = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)[None]
        scores.append(metrics.cpbd(clip))
    assert scores[0] > scores[1] > scores[2]
    per_frame = metrics.cpbd_per_frame(np.stack([clip, clip]))
    assert per_frame.shape == (2, 1)


# PSNR and SSIM on the device (lipjax.eval.device_metrics) against the host functions.
# Tolerances: PSNR 1e-4 dB (float32: about 4e-6 dB measured); SSIM 1e-6 on random, natural
# and shifted frames (about 1e-7 measured), 5e-5 on flat black and white regions, the
# worst case of float32 variances (about 1e-5 measured).

_PSNR_ATOL_DB = 1e-4
_SSIM_ATOL = 1e-6
_SSIM_ATOL_FLAT = 5e-5

_DEVICE_PAIRS = (
    ("psnr_per_frame", _PSNR_ATOL_DB),
    ("ssim_per_frame", _SSIM_ATOL),
    ("psnr_per_frame_paper", _PSNR_ATOL_DB),
    ("ssim_per_frame_paper", _SSIM_ATOL),
)


def _frame_pairs(shape, seed=0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    smooth = _smooth_frames(shape, seed)
    noisy = np.clip(smooth + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)
    # Frames moved smoothly (sub-pixel, interpolated) as a mouth would between frames.
    frame_axes = (0,) * (len(shape) - 3)
    shifted = scipy.ndimage.shift(smooth.astype(np.float64), (*frame_axes, 0.6, -1.3, 0))
    shifted = np.clip(np.rint(shifted), 0, 255).astype(np.uint8)
    return {
        "random": (_random_frames(shape, seed), _random_frames(shape, seed + 1)),
        "noisy": (smooth, noisy),
        "shifted": (smooth, shifted),
        "dark_vs_bright": (_random_frames(shape, seed, 0, 40), _random_frames(shape, seed, 200)),
    }


_DEVICE_SHAPES = [(2, 3, 64, 64, 3), (4, 11, 11, 3), (2, 2, 23, 37, 3), (40, 17, 3)]


@pytest.mark.parametrize("shape", _DEVICE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_device_metrics_equal_the_host_metrics_per_frame(shape):
    from lipjax.eval import device_metrics

    for case, (real, fake) in _frame_pairs(shape).items():
        for name, atol in _DEVICE_PAIRS:
            expected = getattr(metrics, name)(real, fake)
            got = np.asarray(getattr(device_metrics, name)(real, fake), np.float64)
            assert got.shape == expected.shape == shape[:-3], (case, name)
            np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=f"{case} {name}")


def test_device_metrics_of_identical_frames_are_capped_psnr_and_ssim_one():
    from lipjax.eval import device_metrics

    clips = _smooth_frames((2, 3, 16, 24, 3), seed=4)
    for name in ("psnr_per_frame", "psnr_per_frame_paper"):
        assert np.all(np.isinf(np.asarray(getattr(device_metrics, name)(clips, clips))))
    for name in ("ssim_per_frame", "ssim_per_frame_paper"):
        np.testing.assert_array_equal(getattr(device_metrics, name)(clips, clips), 1.0)
    values = device_metrics.clip_metrics(clips, clips)
    assert sorted(values) == sorted(device_metrics.CLIP_METRICS)
    for name in ("psnr", "psnr_paper"):
        np.testing.assert_array_equal(values[name], metrics.PSNR_CAP_DB)
    for name in ("ssim", "ssim_paper"):
        np.testing.assert_array_equal(values[name], 1.0)


def test_device_ssim_on_flat_black_and_white_regions():
    # The worst case of float32 variances: flat regions far from the frame's mean level.
    rng = np.random.default_rng(5)
    real = np.zeros((3, 32, 48, 3), np.uint8)
    real[:, :, 24:] = 255
    real[1, :2] = 0  # one frame with a little more black
    fake = np.clip(real.astype(int) + rng.integers(-2, 3, real.shape), 0, 255).astype(np.uint8)
    offset = np.clip(real.astype(int) + np.where(real > 0, -3, 3), 0, 255).astype(np.uint8)
    from lipjax.eval import device_metrics

    for other in (fake, offset):
        for name in ("ssim_per_frame", "ssim_per_frame_paper"):
            np.testing.assert_allclose(
                np.asarray(getattr(device_metrics, name)(real, other), np.float64),
                getattr(metrics, name)(real, other),
                rtol=0,
                atol=_SSIM_ATOL_FLAT,
            )


def test_device_clip_metrics_are_the_capped_means_evaluation_reported():
    from lipjax.eval import device_metrics

    real = _smooth_frames((3, 5, 32, 32, 3), seed=6)
    fake = np.clip(real + np.random.default_rng(7).normal(0, 8, real.shape), 0, 255)
    fake = fake.astype(np.uint8)
    fake[1, 2] = real[1, 2]  # an identical frame: PSNR inf, capped at 100 dB in the mean
    cap = metrics.PSNR_CAP_DB
    expected = {
        "psnr": np.minimum(metrics.psnr_per_frame(real, fake), cap).mean(axis=1),
        "ssim": metrics.ssim_per_frame(real, fake).mean(axis=1),
        "psnr_paper": np.minimum(metrics.psnr_per_frame_paper(real, fake), cap).mean(axis=1),
        "ssim_paper": metrics.ssim_per_frame_paper(real, fake).mean(axis=1),
    }
    values = device_metrics.clip_metrics(real, fake)
    tolerances = (_PSNR_ATOL_DB, _SSIM_ATOL) * 2
    for name, atol in zip(device_metrics.CLIP_METRICS, tolerances, strict=True):
        assert values[name].shape == (3,)
        np.testing.assert_allclose(np.asarray(values[name]), expected[name], rtol=0, atol=atol)
    # Float clips in [-1, 1] are rounded to the same levels.
    as_float = (real.astype(np.float32) / 127.5 - 1.0, fake.astype(np.float32) / 127.5 - 1.0)
    np.testing.assert_array_equal(metrics.to_uint8(as_float[1]), fake)
    for name, value in device_metrics.clip_metrics(*as_float).items():
        np.testing.assert_array_equal(value, values[name])


def test_device_grey_levels_equal_the_host_ones_for_every_colour():
    from lipjax.eval import device_metrics

    rgb = np.stack(np.meshgrid(*[np.arange(256)] * 3, indexing="ij"), axis=-1)
    rgb = rgb.reshape(256, 256 * 256, 3).astype(np.uint8)
    np.testing.assert_array_equal(device_metrics._grey(rgb), metrics._grey_uint8(rgb))


def test_device_metrics_are_vectorised_and_compose_with_jit():
    import jax
    import jax.numpy as jnp

    from lipjax.eval import device_metrics

    def program(batch: int, frames: int) -> str:
        clips = jax.ShapeDtypeStruct((batch, frames, 16, 16, 3), jnp.uint8)
        return str(jax.make_jaxpr(device_metrics.clip_metrics)(clips, clips))

    # No loop over clips or frames: no loop primitive, and the program (one line per
    # operation) does not grow with B or T.
    small, large = program(1, 1), program(6, 16)
    assert small.count("\n") == large.count("\n")
    assert not any(loop in large for loop in ("while[", "scan[", "fori_loop"))

    real = _smooth_frames((4, 3, 16, 16, 3), seed=8)
    fake = _random_frames(real.shape, seed=9)
    batched = device_metrics.clip_metrics(real, fake)
    for index in range(len(real)):
        alone = device_metrics.clip_metrics(real[index : index + 1], fake[index : index + 1])
        for name in device_metrics.CLIP_METRICS:
            np.testing.assert_allclose(alone[name][0], batched[name][index], rtol=1e-6)

    # Inside a caller's jit and vmap (over the clips).
    outer = jax.jit(lambda r, f: device_metrics.clip_metrics(r, f)["ssim"] * 2.0)
    np.testing.assert_allclose(outer(real, fake), 2.0 * batched["ssim"], rtol=1e-6)
    mapped = jax.vmap(device_metrics.ssim_per_frame)(real, fake)
    np.testing.assert_allclose(mapped.mean(axis=1), batched["ssim"], rtol=1e-6)


def test_device_metrics_refuse_bad_inputs():
    from lipjax.eval import device_metrics

    clips = _random_frames((1, 2, 16, 16, 3))
    with pytest.raises(ValueError, match="shape"):
        device_metrics.clip_metrics(clips, clips[:, :1])
    with pytest.raises(ValueError, match="B, T, H, W, C"):
        device_metrics.clip_metrics(clips[0], clips[0])
    with pytest.raises(ValueError, match="11 x 11"):
        device_metrics.ssim_per_frame(clips[..., :10, :, :], clips[..., :10, :, :])
    with pytest.raises(ValueError, match="7 x 7"):
        device_metrics.ssim_per_frame_paper(clips[..., :6, :], clips[..., :6, :])
    with pytest.raises(ValueError, match="RGB"):
        device_metrics.psnr_per_frame_paper(clips[..., :2], clips[..., :2])
    with pytest.raises(TypeError, match="uint8"):
        device_metrics.psnr_per_frame(clips.astype(np.int16), clips.astype(np.int16))
