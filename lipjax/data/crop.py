"""The lip crop rule (docs/design.md, "Lip crops"), shared by every corpus and by generate().

Mouth = the 20 landmarks 48..67 of dlib's 68-point model. Box = their bounding rectangle;
centre = its centre; r = 0.65 * max(w, h); the crop is the square [cy - r, cy + r] x
[cx - r, cx + r] resized to 64 x 64. Optionally the centre and r are smoothed over time
(the authors did not smooth; smoothing reduces jitter).

Coordinates are continuous pixel coordinates (x, y): pixel (row i, column j) covers
x in [j, j + 1) and y in [i, i + 1), so its centre is (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

CROP_SIZE = 64
MOUTH_SCALE = 0.65
NUM_MOUTH_LANDMARKS = 20


def mouth_boxes(mouth_landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop centres (T, 2) as (x, y) and half-sizes r (T,) from mouth landmarks (T, 20, 2)."""
    points = np.asarray(mouth_landmarks, np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_MOUTH_LANDMARKS, 2):
        raise ValueError(
            f"mouth_landmarks: expected shape (T, {NUM_MOUTH_LANDMARKS}, 2), got {points.shape}"
        )
    if not np.all(np.isfinite(points)):
        raise ValueError("mouth_landmarks: contains NaN or inf")
    low, high = points.min(axis=1), points.max(axis=1)
    centres = (low + high) / 2.0
    half_sizes = MOUTH_SCALE * np.max(high - low, axis=1)
    return centres, half_sizes


def smooth_boxes(
    centres: np.ndarray, half_sizes: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Moving average of box centres and sizes over `window` frames (edges: nearest)."""
    if window <= 1:
        return centres, half_sizes
    smoothed_centres = scipy.ndimage.uniform_filter1d(centres, window, axis=0, mode="nearest")
    smoothed_sizes = scipy.ndimage.uniform_filter1d(half_sizes, window, mode="nearest")
    return smoothed_centres, smoothed_sizes


def crop_frame(
    frame: np.ndarray, centre: np.ndarray, half_size: float, size: int = CROP_SIZE
) -> np.ndarray:
    """Bilinear crop of the square of half-size `half_size` around `centre`, resized to
    size x size; Gaussian pre-filtered when shrinking so it does not alias. Pixels outside
    the frame repeat the nearest edge."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame: expected (H, W, 3) RGB, got shape {frame.shape}")
    if not half_size > 0:
        raise ValueError(f"half_size: expected a positive box size, got {half_size}")
    scale = 2.0 * half_size / size  # input pixels per output pixel
    image = frame.astype(np.float32)
    if scale > 1.0:
        sigma = (scale - 1.0) / 2.0  # scikit-image's anti-aliasing choice for downscaling
        image = scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="nearest")
    offsets = (np.arange(size) + 0.5) * scale
    xs = centre[0] - half_size + offsets - 0.5  # continuous -> array index coordinates
    ys = centre[1] - half_size + offsets - 0.5
    rows, cols = np.meshgrid(ys, xs, indexing="ij")
    out = np.stack(
        [
            scipy.ndimage.map_coordinates(image[..., c], (rows, cols), order=1, mode="nearest")
            for c in range(3)
        ],
        axis=-1,
    )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def landmarks_to_crop(
    landmarks: np.ndarray, centres: np.ndarray, half_sizes: np.ndarray, size: int = CROP_SIZE
) -> np.ndarray:
    """Maps landmarks (T, P, 2) from frame to crop pixel coordinates."""
    origin = centres - half_sizes[:, None]
    return ((landmarks - origin[:, None, :]) * (size / (2.0 * half_sizes))[:, None, None]).astype(
        np.float32
    )


def video_crop_boxes(
    frames: np.ndarray, mouth_landmarks: np.ndarray, smoothing_window: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`frames` as an array, checked to be (T, H, W, 3) with one (20, 2) landmark set per
    frame, and each frame's smoothed crop box: centres (T, 2) and half-sizes (T,)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected (T, H, W, 3) RGB video, got shape {frames.shape}")
    if len(frames) != len(mouth_landmarks):
        raise ValueError(
            f"mouth_landmarks: {len(mouth_landmarks)} frames of landmarks for "
            f"{len(frames)} video frames"
        )
    centres, half_sizes = smooth_boxes(*mouth_boxes(mouth_landmarks), smoothing_window)
    return frames, centres, half_sizes


def crop_video(
    frames: np.ndarray,
    mouth_landmarks: np.ndarray,
    smoothing_window: int = 1,
    size: int = CROP_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Lip crops (T, size, size, 3) uint8 and mouth landmarks in crop pixels (T, 20, 2).

    Args:
      frames: (T, H, W, 3) uint8 video.
      mouth_landmarks: (T, 20, 2) points 48..67 as (x, y) in frame pixels.
      smoothing_window: frames in the moving average of the crop box (1 = none).
    """
    frames, centres, half_sizes = video_crop_boxes(frames, mouth_landmarks, smoothing_window)
    crops = np.stack(
        [crop_frame(f, c, r, size) for f, c, r in zip(frames, centres, half_sizes, strict=True)]
    )
    return crops, landmarks_to_crop(np.asarray(mouth_landmarks), centres, half_sizes, size)


def paste_frame(
    frame: np.ndarray,
    crop: np.ndarray,
    centre: np.ndarray,
    half_size: float,
    feather: float = 0.0,
) -> np.ndarray:
    """The inverse of `crop_frame`: `frame` (H, W, 3) uint8 with `crop` (size, size, 3)
    resized back onto the square of half-size `half_size` around `centre` (x, y).

    Every frame pixel whose centre lies in the square takes the crop's bilinear value at
    the point `crop_frame` sampled there (sub-pixel exact: no rounding of the box); pixels
    outside it keep the frame's. `feather` > 0 blends the outer `feather` crop pixels of
    each side into the frame with a smoothstep, hiding the edge; 0 pastes as is.
    """
    frame = np.asarray(frame)
    crop = np.asarray(crop)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame: expected (H, W, 3) RGB, got shape {frame.shape}")
    size = crop.shape[0]
    if crop.shape != (size, size, 3):
        raise ValueError(f"crop: expected a square (size, size, 3) RGB crop, got {crop.shape}")
    if not half_size > 0:
        raise ValueError(f"half_size: expected a positive box size, got {half_size}")
    out = frame.copy()
    height, width = frame.shape[:2]
    # Pixels j whose centre j + 0.5 lies in [cx - r, cx + r] (the same in y).
    x0 = max(int(np.ceil(centre[0] - half_size - 0.5)), 0)
    x1 = min(int(np.floor(centre[0] + half_size - 0.5)) + 1, width)
    y0 = max(int(np.ceil(centre[1] - half_size - 0.5)), 0)
    y1 = min(int(np.floor(centre[1] + half_size - 0.5)) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return out
    scale = 2.0 * half_size / size  # frame pixels per crop pixel
    # Crop array coordinates of the frame pixels' centres (crop_frame's map, inverted).
    us = (np.arange(x0, x1) + 0.5 - (centre[0] - half_size)) / scale - 0.5
    vs = (np.arange(y0, y1) + 0.5 - (centre[1] - half_size)) / scale - 0.5
    rows, cols = np.meshgrid(vs, us, indexing="ij")
    image = crop.astype(np.float32)
    pasted = np.stack(
        [
            scipy.ndimage.map_coordinates(image[..., c], (rows, cols), order=1, mode="nearest")
            for c in range(3)
        ],
        axis=-1,
    )
    if feather > 0:
        # Distance to the square's nearest side, in crop pixels, as weights 0..1.
        edge = np.minimum(np.minimum(rows + 0.5, size - 0.5 - rows),
                          np.minimum(cols + 0.5, size - 0.5 - cols))  # fmt: skip
        ramp = np.clip(edge / feather, 0.0, 1.0)[..., None]
        alpha = ramp * ramp * (3.0 - 2.0 * ramp)
        pasted = alpha * pasted + (1.0 - alpha) * frame[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(pasted), 0, 255).astype(np.uint8)
    return out
