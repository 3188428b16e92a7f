"""PSNR and SSIM of lipjax.eval.metrics computed by XLA on the default device.

The same four image metrics as the host functions, for every frame of a batch at once
(no Python loop over frames), so that validation during training does not leave the
accelerator idle while the host scores clips one frame at a time:

  psnr        `metrics.psnr_per_frame`: PSNR of the RGB frames;
  ssim        `metrics.ssim_per_frame`: colour SSIM, skimage's structural_similarity per
              channel (11x11 Gaussian window of sigma 1.5, population covariances,
              K1 0.01, K2 0.03, L 255), averaged over the channels;
  psnr_paper  `metrics.psnr_per_frame_paper`: PSNR of the grey uint8 frames;
  ssim_paper  `metrics.ssim_per_frame_paper`: skimage's defaults on the grey uint8 frames
              (7x7 uniform window, sample covariances).

`clip_metrics` gives per-clip means over the frames of (B, T, H, W, C) clips, each frame's
PSNR capped at metrics.PSNR_CAP_DB first, as lipjax.eval.evaluation reports them.

Frames are uint8, channels last; floats are taken as the network's [-1, 1] and rounded to
uint8 levels here in float32, which can differ from `metrics.to_uint8` (float64) by one
level where a value lies within about 1e-5 of a rounding tie: pass uint8 frames for the
host's exact levels.

How they match the host (float64) functions, tested in tests/test_metrics.py:
- skimage filters the whole image (scipy.ndimage, mode "reflect") and then averages the
  SSIM map without a border of (win_size - 1) // 2 pixels; in that interior every window
  lies inside the image, so the border mode never matters and we filter in "valid" mode.
- Windows are sums of shifted slices (separable: rows, then columns): elementwise float32
  arithmetic on every backend, where a float32 convolution might run in TF32 on a GPU.
- PSNR: squared errors summed in int32 over each image row (exact), then in float32.
- Paper SSIM: integer levels, uniform window: the window sums and the numerators of the
  variances (49 sum(x^2) - sum(x)^2, ...) are exact int32, rounded once to float32.
- Colour SSIM: float32 Gaussian sums of frames less their (integer) mean level, so that
  sum(w x^2) - (sum(w x))^2 cancels less; errors are ~1e-7 on natural images, ~1e-5 at
  worst on flat black and white regions.
- Grey levels: OpenCV's fixed-point conversion of `metrics._grey_uint8`, in int32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lipjax.eval import metrics

CLIP_METRICS = ("psnr", "ssim", "psnr_paper", "ssim_paper")

_K1, _K2, _DATA_RANGE = 0.01, 0.03, 255.0
_C1, _C2 = (_K1 * _DATA_RANGE) ** 2, (_K2 * _DATA_RANGE) ** 2
_PAPER_WINDOW = 7  # skimage's default win_size


def _gaussian_taps(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """scipy.ndimage's Gaussian kernel as skimage's SSIM builds it: radius
    int(truncate * sigma + 0.5) = 5 (11 taps), normalised to sum 1."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * offsets**2 / sigma**2)
    return weights / weights.sum()


_GAUSSIAN_TAPS = tuple(float(w) for w in _gaussian_taps())


def _levels(frames: jax.Array) -> jax.Array:
    """uint8 frames as they are; float frames in [-1, 1] -> uint8 levels, rounded."""
    if frames.dtype == jnp.uint8:
        return frames
    if not jnp.issubdtype(frames.dtype, jnp.floating):
        raise TypeError(f"expected uint8 frames or floats in [-1, 1], got {frames.dtype}")
    levels = jnp.round((frames.astype(jnp.float32) + 1.0) * 127.5)
    return jnp.clip(levels, 0, 255).astype(jnp.uint8)


def _check(real: jax.Array, fake: jax.Array, min_side: int = 1) -> None:
    """Shapes are static: these raise while tracing, before anything runs."""
    for name, frames in (("real", real), ("fake", fake)):
        if frames.ndim < 3:
            raise ValueError(f"{name}: expected frames (..., H, W, C), got shape {frames.shape}")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake differ in shape: {real.shape} vs {fake.shape}")
    if min(real.shape[-3:-1]) < min_side:
        raise ValueError(
            f"frames of {real.shape[-3]} x {real.shape[-2]} pixels: SSIM needs at least "
            f"{min_side} x {min_side} (its window)"
        )


def _grey(frames: jax.Array) -> jax.Array:
    """uint8 RGB (..., H, W, 3) -> grey uint8 (..., H, W, 1): `metrics._grey_uint8`, OpenCV's
    COLOR_BGR2GRAY in 14-bit fixed point, in int32."""
    if frames.shape[-1] != 3:
        raise ValueError(f"grey frames need RGB frames, got {frames.shape[-1]} channels")
    rgb = frames.astype(jnp.int32)
    red, green, blue = metrics.OPENCV_GREY_WEIGHTS
    weighted = red * rgb[..., 0] + green * rgb[..., 1] + blue * rgb[..., 2]
    half = 1 << (metrics.OPENCV_GREY_SHIFT - 1)
    return ((weighted + half) >> metrics.OPENCV_GREY_SHIFT).astype(jnp.uint8)[..., None]


def _psnr_of_levels(real: jax.Array, fake: jax.Array) -> jax.Array:
    """PSNR in dB of each uint8 frame (..., H, W, C) -> (...), float32; inf where equal."""
    error = real.astype(jnp.int32) - fake.astype(jnp.int32)
    # Exact per row while W * C * 255^2 < 2^31 (W * C up to 33025), then float32.
    row_sums = jnp.sum(error * error, axis=(-2, -1)).astype(jnp.float32)
    mse = jnp.sum(row_sums, axis=-1) / np.float32(np.prod(real.shape[-3:]))
    return 10.0 * jnp.log10(np.float32(_DATA_RANGE**2) / mse)


def _window_sums(images: jax.Array, taps) -> jax.Array:
    """sum_ij taps[i] taps[j] images[..., y + i, x + j] for every window inside (..., H, W):
    (..., H - n + 1, W - n + 1), as sums of shifted slices (rows, then columns)."""
    n = len(taps)
    height, width = images.shape[-2:]

    def along(values, axis, size):
        def shifted(i):
            return jax.lax.slice_in_dim(values, i, size - n + 1 + i, axis=axis)

        total = taps[0] * shifted(0)
        for i in range(1, n):
            total = total + taps[i] * shifted(i)
        return total

    return along(along(images, images.ndim - 2, height), images.ndim - 1, width)


def _ssim_map(mean_x, mean_y, var_x, var_y, cov):
    numerator = (2.0 * mean_x * mean_y + _C1) * (2.0 * cov + _C2)
    return numerator / ((mean_x * mean_x + mean_y * mean_y + _C1) * (var_x + var_y + _C2))


def _colour_ssim_of_levels(real: jax.Array, fake: jax.Array) -> jax.Array:
    """skimage's structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255) of each channel, mean over channels:
    (..., H, W, C) uint8 -> (...)."""
    # Channels before the image axes: (..., C, H, W).
    x = jnp.moveaxis(real, -1, -3).astype(jnp.float32)
    y = jnp.moveaxis(fake, -1, -3).astype(jnp.float32)
    # Variances are shift-invariant: take them of images less their mean level (an
    # integer, so that products stay exact), then add the levels back to the means.
    level_x = jnp.round(jnp.mean(x, axis=(-2, -1), keepdims=True))
    level_y = jnp.round(jnp.mean(y, axis=(-2, -1), keepdims=True))
    x, y = x - level_x, y - level_y
    # One stack of the five images to filter: about 3x faster on CPU than five filters.
    sums = _window_sums(jnp.stack([x, y, x * x, y * y, x * y]), _GAUSSIAN_TAPS)
    mean_x, mean_y = sums[0], sums[1]
    var_x = sums[2] - mean_x * mean_x
    var_y = sums[3] - mean_y * mean_y
    cov = sums[4] - mean_x * mean_y
    ssim_map = _ssim_map(mean_x + level_x, mean_y + level_y, var_x, var_y, cov)
    return jnp.mean(ssim_map, axis=(-3, -2, -1))


def _uniform_ssim_of_grey(real: jax.Array, fake: jax.Array) -> jax.Array:
    """skimage's structural_similarity defaults (7x7 uniform window, sample covariances,
    data_range=255) of grey uint8 frames (..., H, W) -> (...)."""
    n = _PAPER_WINDOW * _PAPER_WINDOW
    x, y = real.astype(jnp.int32), fake.astype(jnp.int32)
    ones = (1,) * _PAPER_WINDOW  # five filters here: in int32 a stack was 2x slower on CPU
    sum_x, sum_y = _window_sums(x, ones), _window_sums(y, ones)
    sum_xx, sum_yy = _window_sums(x * x, ones), _window_sums(y * y, ones)
    sum_xy = _window_sums(x * y, ones)
    # n / (n - 1) * (sum_xx / n - (sum_x / n)^2) = (n sum_xx - sum_x^2) / (n (n - 1));
    # every term below 49 * 49 * 255^2 < 2^31: exact.
    scale = np.float32(1.0 / (n * (n - 1)))
    var_x = (n * sum_xx - sum_x * sum_x).astype(jnp.float32) * scale
    var_y = (n * sum_yy - sum_y * sum_y).astype(jnp.float32) * scale
    cov = (n * sum_xy - sum_x * sum_y).astype(jnp.float32) * scale
    mean_x = sum_x.astype(jnp.float32) / n
    mean_y = sum_y.astype(jnp.float32) / n
    return jnp.mean(_ssim_map(mean_x, mean_y, var_x, var_y, cov), axis=(-2, -1))


@jax.jit
def psnr_per_frame(real, fake) -> jax.Array:
    """`metrics.psnr_per_frame` on the device: (..., H, W, C) -> (...) dB, inf where equal."""
    real, fake = _levels(jnp.asarray(real)), _levels(jnp.asarray(fake))
    _check(real, fake)
    return _psnr_of_levels(real, fake)


@jax.jit
def ssim_per_frame(real, fake) -> jax.Array:
    """`metrics.ssim_per_frame` (colour) on the device: (..., H, W, C) -> (...); frames of
    at least 11 x 11 pixels."""
    real, fake = _levels(jnp.asarray(real)), _levels(jnp.asarray(fake))
    _check(real, fake, min_side=len(_GAUSSIAN_TAPS))
    return _colour_ssim_of_levels(real, fake)


@jax.jit
def psnr_per_frame_paper(real, fake) -> jax.Array:
    """`metrics.psnr_per_frame_paper` on the device: (..., H, W, 3) -> (...) dB."""
    real, fake = _levels(jnp.asarray(real)), _levels(jnp.asarray(fake))
    _check(real, fake)
    return _psnr_of_levels(_grey(real), _grey(fake))


@jax.jit
def ssim_per_frame_paper(real, fake) -> jax.Array:
    """`metrics.ssim_per_frame_paper` on the device: (..., H, W, 3) -> (...); frames of at
    least 7 x 7 pixels."""
    real, fake = _levels(jnp.asarray(real)), _levels(jnp.asarray(fake))
    _check(real, fake, min_side=_PAPER_WINDOW)
    return _uniform_ssim_of_grey(_grey(real)[..., 0], _grey(fake)[..., 0])


@jax.jit
def clip_metrics(real, fake) -> dict[str, jax.Array]:
    """Per-clip means over the T frames of clips (B, T, H, W, 3) -> {name: (B,) float32}
    for the names of CLIP_METRICS: what lipjax.eval.evaluation reports of a row. Each
    frame's PSNR is capped at metrics.PSNR_CAP_DB (100 dB) before the mean, so identical
    clips score 100 dB and SSIM 1. Frames of at least 11 x 11 pixels."""
    real, fake = _levels(jnp.asarray(real)), _levels(jnp.asarray(fake))
    if real.ndim != 5:
        raise ValueError(f"expected clips (B, T, H, W, C), got shape {real.shape}")
    _check(real, fake, min_side=len(_GAUSSIAN_TAPS))
    real_grey, fake_grey = _grey(real), _grey(fake)
    cap = np.float32(metrics.PSNR_CAP_DB)
    per_frame = {
        "psnr": jnp.minimum(_psnr_of_levels(real, fake), cap),
        "ssim": _colour_ssim_of_levels(real, fake),
        "psnr_paper": jnp.minimum(_psnr_of_levels(real_grey, fake_grey), cap),
        "ssim_paper": _uniform_ssim_of_grey(real_grey[..., 0], fake_grey[..., 0]),
    }
    return {name: jnp.mean(per_frame[name], axis=1) for name in CLIP_METRICS}
