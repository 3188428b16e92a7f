"""Optical-flow training data: generated pairs with exact flow, and classical TV-L1 targets.

`synthetic_flow_batch` draws pairs in the spirit of FlyingChairs (Dosovitskiy et al., "FlowNet:
Learning Optical Flow with Convolutional Networks", ICCV 2015): a textured background and 2-5
textured shapes (ellipses, polygons, blobs), each layer moved by its own affine motion. Every
layer is a continuous function of its own coordinates (a bilinearly interpolated colour texture,
cut from a fixed bank of fractal B-spline noise, and an analytic soft-edged mask), so frame 2
is rendered by inverse-warping each layer exactly and the flow of every first-frame pixel is
known in closed form: the motion of the topmost layer that covers it.

`tvl1_flow` gives classical targets for real lip crops: TV-L1 (Zach, Pock, Bischof, "A Duality
Based Approach for Realtime TV-L1 Optical Flow", DAGM 2007) as implemented by scikit-image.

Conventions (docs/design.md, "Optical flow"): flow arrays are (..., H, W, 2) float32 holding
(dx, dy) = (column, row) displacement in pixels divided by `FLOW_SCALE` = 20, defined on the
pixels of the FIRST frame and pointing to where that point lies in the second frame, so that
frame1(x) = frame2(x + 20 * flow(x)). Frames are float32 in [-1, 1]; pairs stack the two
frames on the channel axis (first frame first), as FlowNetS takes them.

This module imports only NumPy and scikit-image (no JAX), so that spawned TV-L1 workers start
quickly.
"""

from __future__ import annotations

import functools

import numpy as np
from skimage.color import rgb2gray
from skimage.registration import optical_flow_tvl1
from tqdm import tqdm

from lipjax.data import workers

FLOW_SCALE = 20.0
"""Flows are stored and predicted in pixels / FLOW_SCALE (docs/design.md, "Optical flow")."""

MAX_FOREGROUND_SHAPES = 5
MIN_FOREGROUND_SHAPES = 2
# The texture canvas extends this far beyond the image on every side, so that a layer moved by
# up to ~12 px still has texture under every pixel of frame 2.
_CANVAS_MARGIN = 16
# Control-point spacings (pixels) of the noise octaves that make a layer's texture.
_OCTAVE_CELLS = (24, 12, 6, 3)
_TEXTURE_BANK_SIZE = 192
_BANK_TEXTURE_SIZE = 128  # > 64 + 2 * _CANVAS_MARGIN, so that crops vary
_TEXTURE_BANK_SEED = 2015
_EDGE_WIDTH_PX = 1.0  # soft (anti-aliased) shape edges

_SHAPE_ELLIPSE, _SHAPE_POLYGON, _SHAPE_BLOB = 0, 1, 2


# ----------------------------------------------------------------------------- textures


def _cubic_bspline(t: np.ndarray) -> np.ndarray:
    """The cubic B-spline kernel (C2-smooth, support [-2, 2], partition of unity)."""
    t = np.abs(t)
    near = (2.0 / 3.0) - t**2 + 0.5 * t**3
    far = (2.0 - t) ** 3 / 6.0
    return np.where(t < 1.0, near, np.where(t < 2.0, far, 0.0))


def _spline_matrix(size: int, cell: int) -> np.ndarray:
    """(size, knots) weights that turn control points spaced `cell` px into `size` samples."""
    num_knots = int(np.ceil(size / cell)) + 5
    knots = (np.arange(num_knots) - 2.0) * cell
    return _cubic_bspline((np.arange(size)[:, None] - knots[None, :]) / cell).astype(np.float32)


def _fractal_noise(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """`count` smooth noise textures (count, size, size, 4): a luminance and three chroma
    fields, each of unit standard deviation.

    Fractal cubic B-spline noise with a random roughness (how much the fine octaves weigh) per
    texture. The octaves are summed on the control grid of the finest one, which one spline
    pass then turns into pixels (two large matrix products rather than many small ones).
    """
    roughness = rng.uniform(0.35, 1.0, count).astype(np.float32)
    finest = _OCTAVE_CELLS[-1]
    spline = _spline_matrix(size, finest)
    fine_knots = spline.shape[1]
    fine_positions = (np.arange(fine_knots) - 2.0) * finest
    control = np.zeros((count, 4, fine_knots, fine_knots), np.float32)
    for octave, cell in enumerate(_OCTAVE_CELLS):
        knots = _spline_matrix(size, cell).shape[1]
        noise = rng.standard_normal((count, 4, knots, knots), dtype=np.float32)
        amplitude = (roughness**octave)[:, None, None, None]
        if cell == finest:
            control += amplitude * noise
        else:
            # The coarse spline evaluated at the fine control points' positions.
            knot_positions = (np.arange(knots) - 2.0) * cell
            resample = _cubic_bspline((fine_positions[:, None] - knot_positions) / cell)
            resample = resample.astype(np.float32)
            control += amplitude * (resample @ noise @ resample.T)
    # Two passes of one large product each; the second leaves the field transposed, which
    # does not matter for random noise.
    half = control.reshape(-1, fine_knots) @ spline.T
    half = np.swapaxes(half.reshape(-1, fine_knots, size), 1, 2).reshape(-1, fine_knots)
    fields = (half @ spline.T).reshape(count, 4, size, size)
    fields /= fields.std(axis=(-2, -1), keepdims=True) + 1e-6
    return np.ascontiguousarray(np.moveaxis(fields, 1, -1))


@functools.cache
def _texture_bank() -> np.ndarray:
    """A fixed bank of noise textures (N, 128, 128, 4), made once per process (about 1 s).

    Generating fresh noise for every layer of every pair cost more than the rest of a batch;
    a bank seen through random crops, flips, transposes and colourings is as varied.
    """
    rng = np.random.default_rng(_TEXTURE_BANK_SEED)
    chunks = [_fractal_noise(rng, 32, _BANK_TEXTURE_SIZE) for _ in range(_TEXTURE_BANK_SIZE // 32)]
    return np.concatenate(chunks).reshape(-1, 4)  # flat rows for np.take


def _random_textures(rng: np.random.Generator, batch: int, layers: int, size: int) -> np.ndarray:
    """Colour textures (batch, layers, size, size, 3) in [-1, 1]: random crops of the bank,
    randomly flipped and transposed, coloured with a random base colour, contrast and
    chroma strength."""
    bank = _texture_bank()
    shape = (batch, layers)
    choice = rng.integers(0, _TEXTURE_BANK_SIZE, shape)
    offset = rng.integers(0, _BANK_TEXTURE_SIZE - size + 1, (*shape, 2))
    flips = rng.random((*shape, 3)) < 0.5
    steps = np.arange(size)
    rows = offset[..., 0:1] + np.where(flips[..., 0:1], size - 1 - steps, steps)
    cols = offset[..., 1:2] + np.where(flips[..., 1:2], size - 1 - steps, steps)
    index = (
        (choice * _BANK_TEXTURE_SIZE**2)[..., None, None]
        + rows[..., :, None] * _BANK_TEXTURE_SIZE
        + cols[..., None, :]
    )
    index = np.where(flips[..., 2, None, None], np.swapaxes(index, -1, -2), index)
    fields = np.take(bank, index, axis=0)  # (B, L, size, size, 4)
    chroma_gain = rng.uniform(0.1, 0.5, (*shape, 1, 1, 1)).astype(np.float32)
    contrast = rng.uniform(0.08, 0.5, (*shape, 1, 1, 1)).astype(np.float32)
    base = rng.uniform(-0.8, 0.8, (*shape, 1, 1, 3)).astype(np.float32)
    colour = base + contrast * (fields[..., :1] + chroma_gain * fields[..., 1:])
    return np.clip(colour, -1.0, 1.0)


def _sample_textures(textures: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear samples of textures (B, L, S, S, C) at canvas coords (B, L, P, 2) as (x, y).

    Returns (B, L, P, C). Coordinates are clamped to the canvas.
    """
    batch, layers, size, _, channels = textures.shape
    flat = textures.reshape(-1, channels)
    x = np.clip(coords[..., 0], 0.0, size - 1.001)
    y = np.clip(coords[..., 1], 0.0, size - 1.001)
    x0 = np.floor(x)
    y0 = np.floor(y)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    layer_offset = (np.arange(batch * layers) * size * size).reshape(batch, layers, 1)
    top_left = layer_offset + y0.astype(np.int64) * size + x0.astype(np.int64)
    corner = lambda shift: np.take(flat, top_left + shift, axis=0)  # noqa: E731
    top = corner(0) * (1 - wx) + corner(1) * wx
    bottom = corner(size) * (1 - wx) + corner(size + 1) * wx
    return top * (1 - wy) + bottom * wy


def _shifted_crops(textures: np.ndarray, phase: np.ndarray, size: int) -> np.ndarray:
    """The same samples as `_sample_textures` at pixel grid + phase (B, L, 1, 2) + margin,
    phases in [0, 1): a weighted sum of four shifted crops. Returns (B, L, size * size, C)."""
    start = _CANVAS_MARGIN
    wx = phase[..., 0][..., None, None]  # (B, L, 1, 1, 1)
    wy = phase[..., 1][..., None, None]

    def crop(dy, dx):
        return textures[:, :, start + dy : start + dy + size, start + dx : start + dx + size]

    top = crop(0, 0) * (1 - wx) + crop(0, 1) * wx
    bottom = crop(1, 0) * (1 - wx) + crop(1, 1) * wx
    shifted = top * (1 - wy) + bottom * wy
    return shifted.reshape(*textures.shape[:2], size * size, textures.shape[-1])


# ------------------------------------------------------------------------- shapes, motion


def _random_shapes(rng: np.random.Generator, batch: int, size: int) -> dict[str, np.ndarray]:
    """Parameters of MAX_FOREGROUND_SHAPES shapes per sample; unused ones have active=False."""
    shape = (batch, MAX_FOREGROUND_SHAPES)
    count = rng.integers(MIN_FOREGROUND_SHAPES, MAX_FOREGROUND_SHAPES + 1, batch)
    radius = rng.uniform(0.09, 0.3, shape) * size
    aspect = np.exp(rng.uniform(-0.6, 0.6, shape))
    parameters = {
        "active": np.arange(MAX_FOREGROUND_SHAPES)[None, :] < count[:, None],
        "kind": rng.integers(0, 3, shape),
        "centre": rng.uniform(0.05, 0.95, (*shape, 2)) * size,
        "orientation": rng.uniform(-np.pi, np.pi, shape),
        "semi_axes": np.stack([radius * np.sqrt(aspect), radius / np.sqrt(aspect)], axis=-1),
        "polygon_sides": rng.integers(3, 7, shape).astype(np.float32),
        "polygon_phase": rng.uniform(0, 2 * np.pi, shape),
        "blob_amplitudes": rng.uniform(0.0, 0.12, (*shape, 3)),
        "blob_phases": rng.uniform(0, 2 * np.pi, (*shape, 3)),
    }
    return {
        name: value.astype(np.float32) if value.dtype == np.float64 else value
        for name, value in parameters.items()
    }


def _shape_alpha(shapes: dict[str, np.ndarray], points: np.ndarray) -> np.ndarray:
    """Soft coverage in [0, 1] of each shape at points (B, L, P, 2) in its own coordinates."""
    offset = points - shapes["centre"][:, :, None, :]
    cos = np.cos(shapes["orientation"])[..., None]
    sin = np.sin(shapes["orientation"])[..., None]
    along = cos * offset[..., 0] + sin * offset[..., 1]
    across = -sin * offset[..., 0] + cos * offset[..., 1]
    semi_axes = shapes["semi_axes"]
    u = along / semi_axes[..., 0:1]
    v = across / semi_axes[..., 1:2]
    rho = np.hypot(u, v)
    # cos(k theta), sin(k theta) of the polar angle by the multiple-angle recurrences.
    cos1 = np.where(rho > 0, u / np.maximum(rho, 1e-6), 1.0)
    sin1 = np.where(rho > 0, v / np.maximum(rho, 1e-6), 0.0)
    cos_k, sin_k = [cos1], [sin1]
    for _ in range(3):
        cos_prev, sin_prev = cos_k[-1], sin_k[-1]
        cos_k.append(cos_prev * cos1 - sin_prev * sin1)
        sin_k.append(sin_prev * cos1 + cos_prev * sin1)

    # Regular polygon: its radius at theta is apothem / cos(theta - nearest face normal).
    sides = shapes["polygon_sides"][..., None]
    normal = shapes["polygon_phase"][..., None] + np.pi / sides
    best_cos = np.full_like(rho, -1.0)
    for face in range(6):  # up to hexagons; faces beyond `sides` repeat the first ones
        angle = normal + 2 * np.pi * np.mod(face, sides) / sides
        best_cos = np.maximum(best_cos, cos1 * np.cos(angle) + sin1 * np.sin(angle))
    polygon_radius = np.cos(np.pi / sides) / best_cos
    # Blob: a circle with harmonics 2-4.
    amplitudes, phases = shapes["blob_amplitudes"], shapes["blob_phases"]
    blob_radius = 1.0
    for harmonic in range(3):
        cos_phase = np.cos(phases[..., harmonic])[..., None]
        sin_phase = np.sin(phases[..., harmonic])[..., None]
        wave = cos_k[harmonic + 1] * cos_phase - sin_k[harmonic + 1] * sin_phase
        blob_radius = blob_radius + amplitudes[..., harmonic, None] * wave
    kind = shapes["kind"][..., None]
    boundary = np.where(
        kind == _SHAPE_ELLIPSE, 1.0, np.where(kind == _SHAPE_POLYGON, polygon_radius, blob_radius)
    )
    # Approximate signed distance to the boundary, in pixels of the shape's own frame.
    signed_distance = (boundary - rho) * semi_axes.min(axis=-1)[..., None]
    alpha = np.clip(0.5 + signed_distance / _EDGE_WIDTH_PX, 0.0, 1.0)
    return (alpha * shapes["active"][..., None]).astype(np.float32)


def _random_motions(
    rng: np.random.Generator, batch: int, small_motion_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Affine motions of the background (layer 0) and the shapes: (matrix (B, L, 2, 2),
    translation (B, L, 2)), maps y = centre + translation + matrix (x - centre).

    A `small_motion_share` of samples moves little, as lip crops do: translations up to 1 px
    (background) and 2 px (shapes), rotations up to 1.5 degrees, scales within 3-5 %.
    The others move up to 6 px (background) and 10 px (shapes).
    """
    layers = 1 + MAX_FOREGROUND_SHAPES
    small = rng.random(batch) < small_motion_share
    is_background = np.arange(layers) == 0

    def bound(small_bg, small_fg, large_bg, large_fg):
        small_bound = np.where(is_background, small_bg, small_fg)
        large_bound = np.where(is_background, large_bg, large_fg)
        return np.where(small[:, None], small_bound[None, :], large_bound[None, :])

    max_translation = bound(1.0, 2.0, 6.0, 10.0)
    max_rotation = np.deg2rad(bound(1.5, 1.5, 4.0, 10.0))
    max_log_scale = bound(0.03, 0.03, 0.06, 0.1)
    max_log_stretch = bound(0.03, 0.05, 0.04, 0.1)  # anisotropic, e.g. a mouth opening

    translation = max_translation[..., None] * rng.uniform(-1, 1, (batch, layers, 2))
    # Slow or still backgrounds are common in lip crops (the crop follows the face).
    still = rng.random(batch) < 0.15
    translation[still, 0] *= 0.1
    angle = max_rotation * rng.uniform(-1, 1, (batch, layers))
    log_scale = max_log_scale * rng.uniform(-1, 1, (batch, layers))
    log_stretch = max_log_stretch * rng.uniform(-1, 1, (batch, layers))
    scale_x = np.exp(log_scale - log_stretch)
    scale_y = np.exp(log_scale + log_stretch)
    cos, sin = np.cos(angle), np.sin(angle)
    # rotation @ diag(scale_x, scale_y)
    matrix = np.stack(
        [
            np.stack([cos * scale_x, -sin * scale_y], -1),
            np.stack([sin * scale_x, cos * scale_y], -1),
        ],
        axis=-2,
    )
    return matrix.astype(np.float32), translation.astype(np.float32)


def _apply_affine(matrix, translation, centre, points, inverse=False):
    """Forward (or inverse) affine map of points (B, L, P, 2) about centres (B, L, 2)."""
    if inverse:
        matrix = np.linalg.inv(matrix)
        relative = points - (centre + translation)[:, :, None]
        origin = centre
    else:
        relative = points - centre[:, :, None]
        origin = centre + translation
    x, y = relative[..., 0], relative[..., 1]
    m = matrix[:, :, None].astype(np.float32)  # (B, L, 1, 2, 2)
    mapped_x = m[..., 0, 0] * x + m[..., 0, 1] * y
    mapped_y = m[..., 1, 0] * x + m[..., 1, 1] * y
    return np.stack([mapped_x, mapped_y], axis=-1) + origin[:, :, None].astype(np.float32)


# ------------------------------------------------------------------------------ rendering


def _render(
    rng: np.random.Generator,
    batch_size: int,
    size: int,
    small_motion_share: float,
    photometric_jitter: bool,
    with_visibility: bool,
) -> tuple[np.ndarray, ...]:
    layers = 1 + MAX_FOREGROUND_SHAPES
    canvas = size + 2 * _CANVAS_MARGIN
    textures = _random_textures(rng, batch_size, layers, canvas)
    # A random sub-pixel phase per layer, so that frame 1 is not always sampled on the texture
    # grid (and frame 2 between grid points): both frames see the same interpolated texture.
    texture_phase = rng.uniform(0.0, 1.0, (batch_size, layers, 1, 2)).astype(np.float32)
    shapes = _random_shapes(rng, batch_size, size)
    matrix, translation = _random_motions(rng, batch_size, small_motion_share)
    background_centre = (size - 1) / 2 + rng.uniform(-size / 4, size / 4, (batch_size, 1, 2))
    centre = np.concatenate([background_centre.astype(np.float32), shapes["centre"]], axis=1)

    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    grid = np.stack([cols.ravel(), rows.ravel()], axis=-1)  # (P, 2) as (x, y)
    grid = np.broadcast_to(grid, (batch_size, layers, size * size, 2))

    def coverage(points_per_layer):
        """Alpha (B, L, P) of every layer at its own-coordinate points (B, L, P, 2)."""
        foreground = _shape_alpha(shapes, points_per_layer[:, 1:])
        background = np.ones_like(foreground[:, :1])
        return np.concatenate([background, foreground], axis=1)

    def composite(colours, alphas):
        """Image (B, P, 3) of the layers' colours (B, L, P, 3) over each other."""
        image = colours[:, 0]
        for layer in range(1, layers):
            alpha = alphas[:, layer, :, None]
            image = alpha * colours[:, layer] + (1 - alpha) * image
        return image

    # Frame 1: every layer at rest (own coordinates = pixel coordinates); its texture is the
    # canvas shifted by the sub-pixel phase, i.e. bilinear weights constant per layer.
    alpha1 = coverage(grid)
    frame1 = composite(_shifted_crops(textures, texture_phase, size), alpha1)
    # Frame 2: a pixel y shows the point A^-1(y) of each layer (exact inverse warp).
    points2 = _apply_affine(matrix, translation, centre, grid, inverse=True)
    colours2 = _sample_textures(textures, points2 + texture_phase + _CANVAS_MARGIN)
    frame2 = composite(colours2, coverage(points2))

    # Flow of each first-frame pixel: the motion of the topmost layer covering it.
    moved = _apply_affine(matrix, translation, centre, grid)
    layer_flow = moved - grid  # (B, L, P, 2) pixels
    covering = alpha1 >= 0.5
    owner = layers - 1 - np.argmax(covering[:, ::-1], axis=1)  # (B, P); background always covers
    flow = np.take_along_axis(layer_flow, owner[:, None, :, None], axis=1)[:, 0]

    if photometric_jitter:
        gain = np.exp(rng.uniform(-0.05, 0.05, (batch_size, 1, 1)))
        bias = rng.uniform(-0.03, 0.03, (batch_size, 1, 1))
        frame2 = frame2 * gain + bias
        noise = rng.uniform(0.0, 0.02, (batch_size, 1, 1))
        frame1 = frame1 + noise * rng.standard_normal(frame1.shape)
        frame2 = frame2 + noise * rng.standard_normal(frame2.shape)

    pairs = np.concatenate([frame1, frame2], axis=-1).reshape(batch_size, size, size, 6)
    pairs = np.clip(pairs, -1.0, 1.0).astype(np.float32)
    flow = (flow / FLOW_SCALE).reshape(batch_size, size, size, 2).astype(np.float32)
    if not with_visibility:
        return pairs, flow

    # Visible: lands inside frame 2, is crisp in frame 1 (owner fully opaque, nothing above it
    # partly covering) and no higher layer covers its landing point in frame 2.
    target = grid[:, 0] + flow.reshape(batch_size, -1, 2) * FLOW_SCALE  # (B, P, 2)
    inside = np.all((target >= 0) & (target <= size - 1), axis=-1)
    target_per_layer = np.broadcast_to(target[:, None], grid.shape)
    alpha_at_target = coverage(_apply_affine(matrix, translation, centre, target_per_layer, True))
    above_owner = np.arange(layers)[None, :, None] > owner[:, None, :]
    owner_alpha = np.take_along_axis(alpha1, owner[:, None, :], axis=1)[:, 0]
    crisp = (owner_alpha > 0.99) & ~np.any(above_owner & (alpha1 > 0.01), axis=1)
    unoccluded = ~np.any(above_owner & (alpha_at_target > 0.01), axis=1)
    visible = (inside & crisp & unoccluded).reshape(batch_size, size, size)
    return pairs, flow, visible


def synthetic_flow_batch(
    rng: np.random.Generator,
    batch_size: int,
    size: int = 64,
    *,
    small_motion_share: float = 0.4,
    photometric_jitter: bool = True,
    with_visibility: bool = False,
) -> tuple[np.ndarray, ...]:
    """Generated frame pairs with exact flow (FlyingChairs-like, see the module docstring).

    Returns pairs (B, size, size, 6) float32 in [-1, 1] (frame 1 then frame 2) and flow
    (B, size, size, 2) float32, (dx, dy) in pixels / 20 from frame 1 to frame 2. A share
    `small_motion_share` of the pairs moves by at most ~2 px, like lip crops.
    `photometric_jitter` adds a small gain/bias change to frame 2 and sensor noise to both
    (turn it off to test exactness). With `with_visibility`, also returns a boolean
    (B, size, size) mask of the first-frame pixels whose point is visible and inside frame 2,
    away from soft shape edges: there frame1(x) == frame2(x + 20 flow(x)) holds.
    """
    return _render(rng, batch_size, size, small_motion_share, photometric_jitter, with_visibility)


def dihedral_transform(pairs: np.ndarray, flow: np.ndarray, code: np.ndarray):
    """Apply one of the 8 flips/transposes of the square, `code` (N,) in 0..7, to pairs
    (N, H, W, C) and their flows (N, h, w, 2) at once; the flow stays exact.

    Bit 0 mirrors left-right (dx changes sign), bit 1 upside-down (dy changes sign), bit 2
    transposes (dx and dy swap). Frames must be square.
    """
    code = np.asarray(code)[:, None, None, None]
    sign_x = np.array([-1.0, 1.0], np.float32)
    sign_y = np.array([1.0, -1.0], np.float32)
    pairs = np.where(code & 1, pairs[:, :, ::-1], pairs)
    flow = np.where(code & 1, flow[:, :, ::-1] * sign_x, flow)
    pairs = np.where(code & 2, pairs[:, ::-1], pairs)
    flow = np.where(code & 2, flow[:, ::-1] * sign_y, flow)
    pairs = np.where(code & 4, np.swapaxes(pairs, 1, 2), pairs)
    flow = np.where(code & 4, np.swapaxes(flow, 1, 2)[..., ::-1], flow)
    return pairs, flow


class SyntheticFlowPool:
    """Training batches of generated pairs at a fraction of the rendering cost.

    A pool of `pool_size` pairs, of which `refresh_per_step` are rendered anew at every step
    (the oldest go); a batch is drawn from the pool with a random flip/transpose each. The
    pool at step k holds exactly the pairs rendered for steps k - pool_size/refresh + 1 .. k,
    each from `np.random.default_rng([seed, stream, step, part])`, so `batch(step)` is a
    function of the step: asked for a step other than the next one (a resumed run), the pool
    is rebuilt. Targets are returned as given by `reduce_flow` (e.g. pooled to 16x16).
    """

    def __init__(
        self,
        seed: int,
        stream: int,
        batch_size: int,
        pool_size: int = 512,
        refresh_per_step: int = 4,
        small_motion_share: float = 0.4,
        reduce_flow=None,
    ):
        if pool_size % refresh_per_step:
            raise ValueError("pool_size must be a multiple of refresh_per_step")
        self.seed, self.stream, self.batch_size = seed, stream, batch_size
        self.refresh_per_step = refresh_per_step
        self.generations = pool_size // refresh_per_step
        self.small_motion_share = small_motion_share
        self.reduce_flow = reduce_flow or (lambda flow: flow)
        self._pairs: np.ndarray | None = None
        self._flow: np.ndarray | None = None
        self._step: int | None = None  # the step the pool is up to date for

    def _render_generation(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.stream, step + self.generations, 0])
        pairs, flow = synthetic_flow_batch(
            rng, self.refresh_per_step, small_motion_share=self.small_motion_share
        )
        return pairs, self.reduce_flow(flow)

    def _slot(self, step: int) -> slice:
        begin = (step % self.generations) * self.refresh_per_step
        return slice(begin, begin + self.refresh_per_step)

    def _advance_to(self, step: int) -> None:
        if self._step is not None and step == self._step + 1:
            steps = [step]
        else:  # first call or a jump: render the whole window ending at `step`
            steps = list(range(step - self.generations + 1, step + 1))
        for generation in steps:
            pairs, flow = self._render_generation(generation)
            if self._pairs is None:
                pool = self.generations * self.refresh_per_step
                self._pairs = np.zeros((pool, *pairs.shape[1:]), pairs.dtype)
                self._flow = np.zeros((pool, *flow.shape[1:]), flow.dtype)
            self._pairs[self._slot(generation)] = pairs
            self._flow[self._slot(generation)] = flow
        self._step = step

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(pairs (B, 64, 64, 6), flow) for training step `step` (0, 1, 2, ...)."""
        if step != self._step:
            self._advance_to(step)
        rng = np.random.default_rng([self.seed, self.stream, step, 1])
        chosen = rng.integers(0, len(self._pairs), self.batch_size)
        return dihedral_transform(
            self._pairs[chosen], self._flow[chosen], rng.integers(0, 8, self.batch_size)
        )


def warp_backward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample image (H, W, C) at x + 20 flow(x) (bilinear, clamped): frame 2 pulled back onto
    frame 1 with the flow of frame 1. flow: (H, W, 2) in pixels / 20."""
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    x = np.clip(cols + flow[..., 0] * FLOW_SCALE, 0, width - 1.0001)
    y = np.clip(rows + flow[..., 1] * FLOW_SCALE, 0, height - 1.0001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    top = image[y0, x0] * (1 - wx) + image[y0, x0 + 1] * wx
    bottom = image[y0 + 1, x0] * (1 - wx) + image[y0 + 1, x0 + 1] * wx
    return (top * (1 - wy) + bottom * wy).astype(image.dtype)


# ----------------------------------------------------------------------------------- TV-L1


def tvl1_flow(frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
    """TV-L1 flow (Zach et al. 2007, scikit-image) from frame1 to frame2, in our convention.

    frame1, frame2: (H, W, 3) RGB (uint8, or float in [-1, 1]) -> (H, W, 2) float32 (dx, dy)
    in pixels / 20, computed on grey frames.
    """
    grey1, grey2 = (_grey(frame) for frame in (frame1, frame2))
    # scikit-image registers the moving image onto the reference: reference(r, c) ~
    # moving(r + v, c + u), i.e. (v, u) = (row, col) displacement from frame 1 to frame 2.
    row_shift, col_shift = optical_flow_tvl1(grey1, grey2)
    return (np.stack([col_shift, row_shift], axis=-1) / FLOW_SCALE).astype(np.float32)


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return rgb2gray(frame)
    return rgb2gray((np.asarray(frame, np.float32) + 1.0) / 2.0)


def farneback_flow(frame1: np.ndarray, frame2: np.ndarray) -> np.ndarray:
    """Farneback's flow (SCIA 2003, OpenCV) from frame1 to frame2 with the authors' settings
    (pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5, sigma 1.2; their
    dataset.py), in our convention: (H, W, 2) float32 (dx, dy) in pixels / 20. Needs
    OpenCV, an optional dependency (`pip install -e ".[farneback]"`)."""
    try:
        import cv2
    except ImportError:
        raise ImportError(
            'flownet.finetune_targets="farneback" needs OpenCV: pip install -e ".[farneback]"'
        ) from None
    grey1, grey2 = (np.rint(_grey(frame) * 255).astype(np.uint8) for frame in (frame1, frame2))
    flow = cv2.calcOpticalFlowFarneback(grey1, grey2, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return (flow / FLOW_SCALE).astype(np.float32)


CLASSICAL_FLOWS = {"tvl1": tvl1_flow, "farneback": farneback_flow}


def _classical_flow_of_pair(method: str, pair: np.ndarray) -> np.ndarray:
    return CLASSICAL_FLOWS[method](pair[..., :3], pair[..., 3:])


def classical_flows(
    pairs: np.ndarray,
    method: str = "tvl1",
    num_workers: int = 2,
    progress: bool = True,
    description: str | None = None,
) -> np.ndarray:
    """Classical flow (`method`: "tvl1" or "farneback") of every pair (N, H, W, 6) ->
    (N, H, W, 2), over `num_workers` processes (1: in this process), with a progress bar."""
    if method not in CLASSICAL_FLOWS:
        raise ValueError(
            f"flownet.finetune_targets: expected one of {sorted(CLASSICAL_FLOWS)}, got {method!r}"
        )
    flows = np.zeros((*pairs.shape[:-1], 2), np.float32)
    bar = tqdm(total=len(pairs), desc=description or method, disable=not progress, unit="pair")
    # Fresh worker processes (not fork: this process holds JAX's thread pools) that never
    # re-import the caller's __main__ (lipjax.data.workers).
    num_workers = 1 if len(pairs) < 8 else max(1, num_workers)
    compute = functools.partial(_classical_flow_of_pair, method)
    for index, flow in enumerate(workers.ordered_map(compute, pairs, num_workers)):
        flows[index] = flow
        bar.update()
    bar.close()
    return flows


def end_point_error(flow: np.ndarray, target: np.ndarray) -> float:
    """Mean end-point error in PIXELS between flows (..., 2) given in pixels / 20."""
    difference = (np.asarray(flow, np.float64) - np.asarray(target, np.float64)) * FLOW_SCALE
    return float(np.mean(np.linalg.norm(difference, axis=-1)))
