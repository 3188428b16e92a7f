"""Evaluation metrics of Sec. 5.2 of Chen et al. (ECCV 2018): PSNR, SSIM and LMD.

Image metrics take uint8 frames, channels last, of shape (..., H, W, C): one frame
(H, W, C), a clip (T, H, W, C) or a batch of clips (B, T, H, W, C). Each frame is scored
on its own and the scores are averaged over every frame. Generator outputs in [-1, 1]
are turned into uint8 first with `to_uint8`, as the paper scored frames saved as images.

LMD takes mouth landmarks (T, P, 2) or (B, T, P, 2), with P = 20 for dlib's mouth
points 48..67, as (x, y) in crop pixels.
"""

from __future__ import annotations

import numpy as np
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
