"""Evaluation metrics of Sec. 5.2 of Chen et al. (ECCV 2018): PSNR, SSIM, LMD and CPBD.

Image metrics take uint8 frames, channels last, of shape (..., H, W, C): one frame
(H, W, C), a clip (T, H, W, C) or a batch of clips (B, T, H, W, C). Each frame is scored
on its own and the scores are averaged over every frame. Generator outputs in [-1, 1]
are turned into uint8 first with `to_uint8`, as the paper scored frames saved as images.

LMD takes mouth landmarks (T, P, 2) or (B, T, P, 2), with P = 20 for dlib's mouth
points 48..67, as (x, y) in crop pixels.

CPBD, the no-reference sharpness of Narvekar & Karam (IEEE TIP 2011), scores single uint8
frames; see `cpbd_per_frame` for how our implementation relates to the published one.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import skimage.feature
import skimage.filters
import skimage.metrics

# The value a frame with zero error (PSNR = inf) contributes to an average of PSNRs.
PSNR_CAP_DB = 100.0

# ITU-R BT.601 luma weights, for the grey variant of SSIM.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def to_uint8(frames) -> np.ndarray:
    """Frames as float in [-1, 1] (the network's range) -> uint8 in [0, 255], rounded."""
    frames = np.asarray(frames, np.float64)
    return np.clip(np.rint((frames + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _check_frames(real, fake) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real), np.asarray(fake)
    for name, frames in (("real", real), ("fake", fake)):
        if frames.dtype != np.uint8:
            raise TypeError(
                f"{name}: expected uint8 frames, got {frames.dtype} (use to_uint8 for [-1, 1])"
            )
        if frames.ndim < 3:
            raise ValueError(f"{name}: expected frames (..., H, W, C), got shape {frames.shape}")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake differ in shape: {real.shape} vs {fake.shape}")
    return real, fake


def psnr_per_frame(real, fake) -> np.ndarray:
    """PSNR in dB of each frame, shape (...,) for frames (..., H, W, C); inf where equal.

    The difference is taken in float64: the authors subtracted uint8 arrays, which wraps
    around (0 - 255 became 1), a bug we do not copy.
    """
    real, fake = _check_frames(real, fake)
    error = real.astype(np.float64) - fake.astype(np.float64)
    mse = np.mean(np.square(error), axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def psnr(real, fake, cap_db: float = PSNR_CAP_DB) -> float:
    """Mean PSNR in dB over all frames; a frame's PSNR is capped at `cap_db` (100 dB) before
    averaging, so an identical frame (PSNR = inf) counts as 100 dB, not as inf."""
    return float(np.mean(np.minimum(psnr_per_frame(real, fake), cap_db)))


def _ssim_of_frame(real: np.ndarray, fake: np.ndarray, grey: bool) -> float:
    # Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error
    # visibility to structural similarity": 11x11 Gaussian window of sigma 1.5, population
    # covariances, K1 = 0.01, K2 = 0.03, L = 255.
    options = {
        "data_range": 255.0,
        "gaussian_weights": True,
        "sigma": 1.5,
        "use_sample_covariance": False,
    }
    if grey:
        real_luma = real.astype(np.float64) @ _LUMA_WEIGHTS
        fake_luma = fake.astype(np.float64) @ _LUMA_WEIGHTS
        return skimage.metrics.structural_similarity(real_luma, fake_luma, **options)
    # Colour: SSIM of each channel, averaged over the channels.
    return skimage.metrics.structural_similarity(
        real.astype(np.float64), fake.astype(np.float64), channel_axis=-1, **options
    )


# OpenCV's integer RGB -> grey (cvtColor COLOR_BGR2GRAY on 8-bit images, which the authors
# applied before PSNR and SSIM): BT.601 weights in 14-bit fixed point, rounded by adding
# half of 2**14 before the shift.
OPENCV_GREY_WEIGHTS = (4899, 9617, 1868)  # R, G, B; they sum to 2**14
OPENCV_GREY_SHIFT = 14


def _grey_uint8(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., H, W, 3) -> grey uint8 (..., H, W, 1), exactly as OpenCV's
    COLOR_BGR2GRAY (the authors' conversion) in integers: (4899 R + 9617 G + 1868 B +
    8192) >> 14. Integer arithmetic, so a frame's grey levels never depend on the batch it
    is scored in (a float luma rounded at exactly k + 1/2 did);
    lipjax.eval.device_metrics does the same."""
    rgb = np.asarray(frames).astype(np.int64)
    weighted = rgb @ np.array(OPENCV_GREY_WEIGHTS)
    return ((weighted + (1 << (OPENCV_GREY_SHIFT - 1))) >> OPENCV_GREY_SHIFT).astype(np.uint8)[
        ..., None
    ]


def psnr_per_frame_paper(real, fake) -> np.ndarray:
    """The authors' PSNR protocol (lelechen63/3d_gan@83b65d9, test.py lines 548-554): PSNR
    of the grey (uint8) frames; the difference in float64, without their uint8 wrap-around."""
    real, fake = _check_frames(real, fake)
    return psnr_per_frame(_grey_uint8(real), _grey_uint8(fake))


def ssim_per_frame_paper(real, fake) -> np.ndarray:
    """The authors' SSIM protocol (test.py lines 548-553): skimage's `compare_ssim` defaults
    on grey uint8 frames, a 7x7 uniform window with sample covariances, L = 255."""
    real, fake = _check_frames(real, fake)
    real_grey, fake_grey = _grey_uint8(real)[..., 0], _grey_uint8(fake)[..., 0]
    image_shape = real_grey.shape[-2:]
    pairs = zip(
        real_grey.reshape(-1, *image_shape), fake_grey.reshape(-1, *image_shape), strict=True
    )
    scores = [
        skimage.metrics.structural_similarity(
            r.astype(np.float64), f.astype(np.float64), win_size=7, data_range=255.0
        )
        for r, f in pairs
    ]
    return np.asarray(scores, np.float64).reshape(real_grey.shape[:-2])


def ssim_per_frame(real, fake, grey: bool = False) -> np.ndarray:
    """SSIM of each frame, shape (...,) for frames (..., H, W, C): colour by default (mean of
    the per-channel SSIMs), or of the BT.601 luma with `grey=True`."""
    real, fake = _check_frames(real, fake)
    if grey and real.shape[-1] != 3:
        raise ValueError(f"grey SSIM needs RGB frames, got {real.shape[-1]} channels")
    image_shape = real.shape[-3:]
    flat_real, flat_fake = real.reshape(-1, *image_shape), fake.reshape(-1, *image_shape)
    scores = [_ssim_of_frame(r, f, grey) for r, f in zip(flat_real, flat_fake, strict=True)]
    return np.asarray(scores, np.float64).reshape(real.shape[:-3])


def ssim(real, fake, grey: bool = False) -> float:
    """Mean SSIM over all frames (Wang et al. 2004); COLOUR by default: each frame's SSIM is
    the mean of its R, G and B SSIMs. `grey=True` scores the BT.601 luma instead."""
    return float(np.mean(ssim_per_frame(real, fake, grey)))


def _check_landmarks(real, fake) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.shape != fake.shape:
        raise ValueError(f"real and fake landmarks differ in shape: {real.shape} vs {fake.shape}")
    if real.ndim not in (3, 4) or real.shape[-1] != 2:
        raise ValueError(f"landmarks: expected (T, P, 2) or (B, T, P, 2), got {real.shape}")
    if not (np.all(np.isfinite(real)) and np.all(np.isfinite(fake))):
        raise ValueError("landmarks: contain NaN or inf")
    return real, fake


def landmark_distance(real_landmarks, fake_landmarks):
    """Landmark distance LMD (Eq. 5 of the paper) in pixels.

    Each frame's landmarks are moved so that their mean is at the origin, in both the
    real and the fake set (the paper's "calibrate the two mean points"); then the
    Euclidean distance of each point pair is averaged over the P points and the T frames:
    LMD = 1/T 1/P sum_t sum_p ||LR_tp - LF_tp||. (The authors' script summed over the
    points instead of averaging, i.e. gave P times this value; we follow the paper.)

    Returns a float for (T, P, 2) inputs and an array (B,) of per-clip LMDs for
    (B, T, P, 2) inputs.
    """
    real, fake = _check_landmarks(real_landmarks, fake_landmarks)
    real = real - real.mean(axis=-2, keepdims=True)
    fake = fake - fake.mean(axis=-2, keepdims=True)
    distances = np.linalg.norm(real - fake, axis=-1)
    per_clip = distances.mean(axis=(-2, -1))
    return float(per_clip) if per_clip.ndim == 0 else per_clip


def mean_point_error(real_landmarks, fake_landmarks):
    """Mean Euclidean distance of corresponding landmarks WITHOUT mean calibration, over
    points and frames: a float for (T, P, 2), per clip (B,) for (B, T, P, 2)."""
    real, fake = _check_landmarks(real_landmarks, fake_landmarks)
    per_clip = np.linalg.norm(real - fake, axis=-1).mean(axis=(-2, -1))
    return float(per_clip) if per_clip.ndim == 0 else per_clip


# Inner-lip landmark pairs (upper, lower) in the 20-point mouth numbering (dlib 61/67,
# 62/66, 63/65 minus 48).
INNER_LIP_PAIRS = ((13, 19), (14, 18), (15, 17))
# A clip whose mouth opening varies less than this (pixels, standard deviation over time)
# is still: its opening correlation is 0, as a still mouth follows no speech.
STILL_OPENING_STD = 1e-3


def mouth_opening(landmarks) -> np.ndarray:
    """Inner-lip gap of each frame, (..., 20, 2) mouth landmarks -> (...), in their units."""
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape[-2:] != (20, 2):
        raise ValueError(f"landmarks: expected (..., 20, 2) mouth points, got {landmarks.shape}")
    upper = landmarks[..., [u for u, _ in INNER_LIP_PAIRS], :]
    lower = landmarks[..., [lo for _, lo in INNER_LIP_PAIRS], :]
    return np.linalg.norm(upper - lower, axis=-1).mean(axis=-1)


def opening_correlation(real_landmarks, fake_landmarks):
    """Pearson correlation over time of the mouth opening of the fake clip with the real
    one's: does the generated mouth open and close when the real one does? 1 in step, 0
    for a still mouth (the static baseline), negative out of phase. LMD mixes this with the
    mouth's shape; this isolates the motion. A float for (T, 20, 2), per clip (B,) for
    (B, T, 20, 2)."""
    real, fake = _check_landmarks(real_landmarks, fake_landmarks)
    real_open, fake_open = mouth_opening(real), mouth_opening(fake)
    real_open = real_open - real_open.mean(axis=-1, keepdims=True)
    fake_open = fake_open - fake_open.mean(axis=-1, keepdims=True)
    real_std, fake_std = real_open.std(axis=-1), fake_open.std(axis=-1)
    still = (real_std < STILL_OPENING_STD) | (fake_std < STILL_OPENING_STD)
    covariance = (real_open * fake_open).mean(axis=-1)
    corr = np.where(still, 0.0, covariance / np.where(still, 1.0, real_std * fake_std))
    return float(corr) if corr.ndim == 0 else corr


# CPBD: Narvekar & Karam, "A No-Reference Image Blur Metric Based on the Cumulative
# Probability of Blur Detection (CPBD)", IEEE Trans. Image Processing 20(9), 2011.

CPBD_BLOCK_SIZE = 64  # blocks of 64 x 64 pixels
CPBD_EDGE_BLOCK_FRACTION = 0.002  # a block with more Canny edge pixels than this is an edge block
CPBD_BETA = 3.6  # slope of the probability of blur detection, fitted by the authors
CPBD_JNB_PROBABILITY = 0.63  # P_JNB: blur is just noticeable at this probability
# Just-noticeable-blur edge width: 5 pixels in blocks of contrast <= 50 grey levels, else 3.
CPBD_JNB_WIDTH_LOW_CONTRAST, CPBD_JNB_WIDTH_HIGH_CONTRAST = 5.0, 3.0
CPBD_LOW_CONTRAST = 50
CPBD_SOBEL_THRESHOLD = 2.0  # grey levels per pixel, as the release calls MATLAB's edge()
_MAX_EDGE_SIDE = 101  # pixels searched on each side of an edge (the published code's limit)


def grey_levels(frames) -> np.ndarray:
    """uint8 RGB frames (..., H, W, 3) -> BT.601 luma rounded to grey levels, float64
    (..., H, W): the uint8 grey image the published CPBD code is given (rgb2gray)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim < 3 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames: expected uint8 RGB frames (..., H, W, 3), got {frames.dtype} {frames.shape}"
        )
    return np.rint(frames.astype(np.float64) @ _LUMA_WEIGHTS)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def _canny_edges(image: np.ndarray) -> np.ndarray:
    """Canny edges with MATLAB's defaults (sigma sqrt(2); high threshold at the 70th
    percentile of the gradient magnitude, low = 0.4 high), used to find edge blocks."""
    sigma = np.sqrt(2.0)
    smoothed = skimage.filters.gaussian(image, sigma=sigma, mode="nearest", preserve_range=True)
    magnitude = np.hypot(scipy.ndimage.sobel(smoothed, 0), scipy.ndimage.sobel(smoothed, 1))
    high = float(np.percentile(magnitude, 70.0))
    if high <= 0:
        return np.zeros(image.shape, bool)
    return skimage.feature.canny(
        image, sigma=sigma, low_threshold=0.4 * high, high_threshold=high, mode="nearest"
    )


def _sobel_derivatives(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical Sobel derivatives (kernel / 8, grey levels per pixel) of each
    image of (N, H, W), borders replicated. (scipy.ndimage.sobel would also smooth across N.)"""

    def derivative(axis: int, across: int) -> np.ndarray:
        smoothed = scipy.ndimage.correlate1d(images, [1.0, 2.0, 1.0], axis=across, mode="nearest")
        return scipy.ndimage.correlate1d(smoothed, [-1.0, 0.0, 1.0], axis=axis, mode="nearest") / 8

    return derivative(-1, -2), derivative(-2, -1)


def _sobel_edges(images: np.ndarray) -> np.ndarray:
    """Thin vertical Sobel edges of (N, H, W) grey images, as the authors' release finds them
    with MATLAB's edge(I, 'Sobel', 2, 'vertical'): the horizontal derivative (Sobel / 8) is
    above 2 grey levels per pixel and its square is a local maximum across the edge."""
    gx, gy = _sobel_derivatives(images)
    strength = gx * gx
    padded = np.pad(strength, ((0, 0), (1, 1), (1, 1)))
    across_x = (strength > padded[:, 1:-1, :-2]) & (strength > padded[:, 1:-1, 2:])
    across_y = (strength > padded[:, :-2, 1:-1]) & (strength > padded[:, 2:, 1:-1])
    local_max = (across_x & (np.abs(gx) >= np.abs(gy))) | across_y
    return (strength > CPBD_SOBEL_THRESHOLD**2) & local_max


def _monotone_runs(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a boolean (N, H, W) array of steps: how many consecutive True steps end at each
    column (counting leftwards) and start at it (counting rightwards)."""
    ending, starting = np.zeros(steps.shape, np.int32), np.zeros(steps.shape, np.int32)
    width = steps.shape[-1]
    for col in range(width):
        previous = ending[..., col - 1] if col else 0
        ending[..., col] = (previous + 1) * steps[..., col]
    for col in range(width - 1, -1, -1):
        following = starting[..., col + 1] if col + 1 < width else 0
        starting[..., col] = (following + 1) * steps[..., col]
    return ending, starting


def _horizontal_edge_widths(images: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Edge widths (Marziliano et al. 2002) along the rows: at an edge pixel whose gradient
    points left or right, the distance between the intensity extrema on either side of it;
    0 where no width is measured (not an edge, another gradient direction, the border)."""
    images = np.asarray(images, np.float64)
    # steps[..., j] compares column j with column j - 1; column 0 has no step.
    steps = np.zeros(images.shape, np.float64)
    steps[..., 1:] = np.diff(images, axis=-1)
    gy, gx = np.gradient(images, axis=(-2, -1))
    # The release leaves the angle at 0 where the horizontal gradient is 0: such pixels are
    # measured as rising edges; we do the same.
    angle = np.where(gx != 0, _round_half_away(np.degrees(np.arctan2(gy, gx)) / 45.0) * 45.0, 0)
    width = images.shape[-1]
    widths = np.zeros(images.shape, np.float64)
    for rising, direction in ((True, angle == 0), (False, np.abs(angle) == 180)):
        ending, starting = _monotone_runs(steps > 0 if rising else steps < 0)
        # Leftwards from column c the intensity keeps falling (rising edge) over the steps
        # ending at column c - 1; rightwards it keeps rising over the steps from column c + 2.
        left = 1 + np.pad(ending, ((0, 0), (0, 0), (1, 0)))[..., :width]
        right = 1 + np.pad(starting, ((0, 0), (0, 0), (0, 2)))[..., 2:]
        measured = edges & direction
        total = np.minimum(left, _MAX_EDGE_SIDE) + np.minimum(right, _MAX_EDGE_SIDE)
        widths = np.where(measured, total, widths)
    widths[:, [0, -1], :] = 0
    widths[:, :, [0, -1]] = 0
    return widths


def _blur_probabilities(image: np.ndarray, canny: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """P_blur of every measured edge of the edge blocks of one grey image (Eq. 4 of the paper)."""
    size = CPBD_BLOCK_SIZE
    probabilities = []
    for top in range(0, image.shape[0] - size + 1, size):
        for left in range(0, image.shape[1] - size + 1, size):
            block = np.s_[top : top + size, left : left + size]
            if np.count_nonzero(canny[block]) <= CPBD_EDGE_BLOCK_FRACTION * size * size:
                continue  # a smooth block
            block_widths = widths[block][widths[block] > 0]
            contrast = int(image[block].max() - image[block].min())
            jnb = (
                CPBD_JNB_WIDTH_LOW_CONTRAST
                if contrast <= CPBD_LOW_CONTRAST
                else CPBD_JNB_WIDTH_HIGH_CONTRAST
            )
            probabilities.append(1.0 - np.exp(-((block_widths / jnb) ** CPBD_BETA)))
    return np.concatenate(probabilities) if probabilities else np.zeros(0)


def cpbd_of_grey(images) -> np.ndarray:
    """CPBD of grey images (H, W) or (N, H, W) with values in [0, 255]; see `cpbd_per_frame`."""
    images = np.asarray(images, np.float64)
    single = images.ndim == 2
    images = images[None] if single else images
    if images.ndim != 3:
        raise ValueError(f"images: expected grey (H, W) or (N, H, W), got shape {images.shape}")
    if min(images.shape[1:]) < CPBD_BLOCK_SIZE:
        raise ValueError(
            f"images: CPBD needs at least {CPBD_BLOCK_SIZE} x {CPBD_BLOCK_SIZE} pixels (one "
            f"block), got {images.shape[1]} x {images.shape[2]}"
        )
    widths = _horizontal_edge_widths(images, _sobel_edges(images))
    scores = np.zeros(len(images))
    for index, image in enumerate(images):
        probabilities = _blur_probabilities(image, _canny_edges(image), widths[index])
        if len(probabilities):
            percent = _round_half_away(100.0 * probabilities)  # the published histogram bins
            scores[index] = np.mean(percent <= round(100 * CPBD_JNB_PROBABILITY))
    return scores[0] if single else scores


def cpbd_per_frame(frames) -> np.ndarray:
    """CPBD sharpness of each uint8 RGB frame (..., H, W, 3) -> (...,), in [0, 1], higher is
    sharper (Narvekar & Karam 2011), on the frame's grey levels (`grey_levels`).

    The steps of the paper and of its authors' MATLAB release: Canny edges mark the 64 x 64
    blocks holding more than 0.2% edge pixels; at each Sobel edge pixel whose gradient is
    horizontal the edge width w is the distance between the intensity extrema on either side
    (Marziliano et al. 2002); a block's contrast sets the just-noticeable width w_JNB (5 for
    contrast <= 50, else 3); P_blur = 1 - exp(-(w / w_JNB)^3.6); CPBD is the share of edges
    with P_blur <= 63% (rounded to whole percent, as the release's histogram does). A frame
    without edge blocks scores 0, as in the release. Our own code: the Sobel edges follow
    the release's call of MATLAB's edge() (vertical, threshold 2) and Canny uses MATLAB's
    default sigma and thresholds on skimage's detector, so values differ from the release
    where those detectors differ (see tests/test_metrics.py for the comparison).
    """
    grey = grey_levels(frames)
    flat = grey.reshape(-1, *grey.shape[-2:])
    return cpbd_of_grey(flat).reshape(grey.shape[:-2])


def cpbd(frames) -> float:
    """Mean CPBD over all frames (..., H, W, 3) uint8: higher is sharper."""
    return float(np.mean(cpbd_per_frame(frames)))
