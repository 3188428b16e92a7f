"""Fast NumPy renderer of a synthetic lower face (nose to chin) with articulated lips.

Each frame is drawn from smooth analytic fields, vectorised over frames and pixels:
background, neck, the face inside a superellipse jaw outline, nose base and nostrils,
philtrum and skin folds, facial hair, then the lips and, when the mouth is open, the
cavity with teeth and tongue. Edges are anti-aliased with box-filter coverage of
approximate signed distances, so frames change smoothly when the parameters do. Lighting,
a Gaussian blur, Gaussian noise and uint8 quantisation finish the frame.

Geometry lives in a face-local frame measured in "reference pixels" (pixels of a
128 x 128 frame): origin at the centre of the resting lip line, x to the image right, y
down. The lip contours are parametric curves y(x) between the mouth corners; the 20 mouth
landmarks (dlib points 48..67) are samples of exactly those curves. A head pose maps the
local frame into the image: image = centre + scale * (size / 128) * R(rotation) @ local +
(dx, dy), where R rotates clockwise on screen for positive angles (y points down).

Pixel convention (as in `lipjax.data.crop`): pixel (row i, column j) covers x in [j, j + 1)
and y in [i, i + 1), so its centre is (j + 0.5, i + 0.5); landmarks use the same
continuous (x, y) coordinates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

ARTICULATION_FIELDS = ("open", "spread", "round", "protrude", "closure", "lip_teeth", "tongue")
ARTICULATION_LOW = np.array([0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
ARTICULATION_HIGH = np.ones(len(ARTICULATION_FIELDS))
NUM_MOUTH_LANDMARKS = 20  # dlib points 48..67
REFERENCE_SIZE = 128
FACIAL_HAIR_STYLES = ("none", "stubble", "moustache", "beard")

# Where the landmarks sample the contours, as fractions of the (outer / inner) half-width.
# Outer: 48 left corner, 49..53 upper lip left to right, 54 right corner, 55..59 lower
# lip right to left. Inner: 60 left corner, 61..63 upper, 64 right corner, 65..67 lower.
_OUTER_UPPER_T = np.array([-0.62, -0.27, 0.0, 0.27, 0.62])
_OUTER_LOWER_T = -_OUTER_UPPER_T
_INNER_UPPER_T = np.array([-0.5, 0.0, 0.5])
_INNER_LOWER_T = -_INNER_UPPER_T

_FRAMES_PER_CHUNK = 8  # bounds the memory of the (frames, H, W) work arrays
_TEXTURE_RADIUS = 96  # texture covers local coordinates [-R, R]^2, one texel per unit
_CAVITY_RGB = np.array([52.0, 18.0, 22.0], np.float32)  # or darker, with dark lips
_TONGUE_RGB = np.array([196.0, 92.0, 100.0], np.float32)


@dataclasses.dataclass(frozen=True)
class Appearance:
    """One speaker's look, constant over their videos. Lengths are reference pixels."""

    skin_rgb: tuple[float, float, float] = (205.0, 150.0, 120.0)
    lip_rgb: tuple[float, float, float] = (175.0, 85.0, 90.0)
    teeth_rgb: tuple[float, float, float] = (232.0, 224.0, 200.0)
    background_rgb: tuple[float, float, float] = (70.0, 90.0, 110.0)
    mouth_half_width: float = 22.0  # corner to centre at rest
    upper_lip_thickness: float = 7.0  # vertical, at the centre, mouth closed
    lower_lip_thickness: float = 9.5
    max_opening: float = 23.0  # inner lip gap at open = 1
    corner_tilt: float = 0.0  # resting corner height (+ down: a frown, - up: a smile)
    cupid_bow_depth: float = 0.2  # dip of the upper lip at its centre, fraction of thickness
    philtrum_depth: float = 0.5  # 0..1 shading strength of the philtrum groove
    jaw_half_width: float = 60.0  # half-width of the face at mouth level
    jaw_angle_y: float = -8.0  # where the jaw line starts to curve in towards the chin
    jaw_roundness: float = 2.2  # superellipse exponent of the jaw: lower is more V-shaped
    chin_half_width: float = 14.0  # half-width of the flat bottom of the chin
    chin_y: float = 42.0  # lowest point of the chin below the lip line, mouth closed
    neck_half_width: float = 36.0
    nose_half_width: float = 17.0  # alar (nose wing) half-width
    nose_base_y: float = -31.0  # bottom of the nose (columella) relative to the lip line
    nostril_darkness: float = 0.8  # 0..1
    facial_hair: str = "none"  # one of FACIAL_HAIR_STYLES
    hair_rgb: tuple[float, float, float] = (40.0, 30.0, 25.0)
    hair_density: float = 0.0  # 0..1 opacity of the facial hair
    texture_seed: int = 0  # seeds the skin mottle and hair texture

    def __post_init__(self) -> None:
        if self.facial_hair not in FACIAL_HAIR_STYLES:
            raise ValueError(
                f"facial_hair: expected one of {FACIAL_HAIR_STYLES}, got {self.facial_hair!r}"
            )

    def to_dict(self) -> dict:
        """JSON-friendly dict (tuples become lists) for metadata."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }


@dataclasses.dataclass(frozen=True)
class HeadPose:
    """In-plane head pose of one frame. Rotation (degrees, clockwise on screen) and scale
    act about the resting mouth centre, which sits at the image centre; then the face is
    translated by (dx, dy) output pixels."""

    rotation_deg: float = 0.0
    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class Lighting:
    """Per-frame lighting: brightness gain and a linear shading gradient (gx, gy).

    The image is multiplied by gain * (1 + gx * (x - c) / size + gy * (y - c) / size)."""

    gain: float = 1.0
    gradient: tuple[float, float] = (0.0, 0.0)


_SKIN_PALETTE = np.array(
    [
        [243, 208, 184],
        [226, 176, 142],
        [200, 138, 100],
        [163, 108, 76],
        [118, 76, 54],
        [78, 50, 37],
    ],
    np.float64,
)
_HAIR_PALETTE = np.array(
    [[32, 24, 20], [70, 48, 32], [120, 80, 45], [165, 135, 90], [150, 148, 142], [140, 70, 38]],
    np.float64,
)


def _rgb(values: np.ndarray) -> tuple[float, float, float]:
    clipped = np.clip(values, 0.0, 255.0)
    return (float(clipped[0]), float(clipped[1]), float(clipped[2]))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """A random speaker: skin from light to dark, varied lips, jaw and nose; ~30% facial hair."""
    tone = rng.uniform(0.0, 1.0) * (len(_SKIN_PALETTE) - 1)
    low = int(min(math.floor(tone), len(_SKIN_PALETTE) - 2))
    skin = _SKIN_PALETTE[low] + (tone - low) * (_SKIN_PALETTE[low + 1] - _SKIN_PALETTE[low])
    skin = skin * rng.uniform(0.94, 1.06) + rng.normal(0.0, 4.0, 3)
    lip = skin * np.array([rng.uniform(0.8, 0.95), rng.uniform(0.5, 0.62), rng.uniform(0.55, 0.7)])
    lip += np.array([15.0, 0.0, 5.0]) * rng.uniform(0.0, 1.0)
    # Keep the lips distinguishable from the skin by making them redder, not darker: dark
    # lips would merge with the mouth cavity.
    while np.linalg.norm(skin - lip) < 35.0:
        lip = lip * np.array([1.0, 0.92, 0.92]) + np.array([3.0, 0.0, 0.0])
    teeth = np.array([236.0, 228.0, 206.0]) * rng.uniform(0.88, 1.0) + rng.normal(0, 3.0, 3)
    background_hue = rng.uniform(0.0, 1.0)
    background = _hsv_to_rgb(background_hue, rng.uniform(0.05, 0.45), rng.uniform(0.25, 0.85))

    facial_hair = "none"
    hair_density = 0.0
    if rng.uniform() < 0.3:
        facial_hair = str(rng.choice(["stubble", "moustache", "beard"], p=[0.45, 0.2, 0.35]))
        hair_density = rng.uniform(0.35, 0.6) if facial_hair == "stubble" else rng.uniform(0.7, 1)
    # Dark hair is the most common; light hair would not show on the darkest skin.
    hair_weights = np.array([0.35, 0.25, 0.15, 0.1, 0.1, 0.05])
    if skin.mean() < 110:
        hair_weights *= np.array([1, 1, 0, 0, 1, 0])
    hair_choice = rng.choice(len(_HAIR_PALETTE), p=hair_weights / hair_weights.sum())
    hair = _HAIR_PALETTE[hair_choice] * rng.uniform(0.85, 1.15)

    return Appearance(
        skin_rgb=_rgb(skin),
        lip_rgb=_rgb(lip),
        teeth_rgb=_rgb(teeth),
        background_rgb=_rgb(background),
        mouth_half_width=float(rng.uniform(19.5, 24.5)),
        upper_lip_thickness=float(rng.uniform(5.5, 8.5)),
        lower_lip_thickness=float(rng.uniform(7.5, 11.5)),
        max_opening=float(rng.uniform(20.0, 25.0)),
        corner_tilt=float(rng.uniform(-1.5, 1.5)),
        cupid_bow_depth=float(rng.uniform(0.08, 0.32)),
        philtrum_depth=float(rng.uniform(0.2, 1.0)),
        jaw_half_width=float(rng.uniform(54.0, 66.0)),
        jaw_angle_y=float(rng.uniform(-22.0, -6.0)),
        jaw_roundness=float(rng.uniform(1.5, 2.3)),
        chin_half_width=float(rng.uniform(6.0, 15.0)),
        chin_y=float(rng.uniform(38.0, 46.0)),
        neck_half_width=float(rng.uniform(30.0, 40.0)),
        nose_half_width=float(rng.uniform(14.0, 20.0)),
        nose_base_y=float(rng.uniform(-34.0, -29.0)),
        nostril_darkness=float(rng.uniform(0.4, 1.0)),
        facial_hair=facial_hair,
        hair_rgb=_rgb(hair),
        hair_density=float(hair_density),
        texture_seed=int(rng.integers(2**31)),
    )


def _hsv_to_rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    channel_offsets = np.array([0.0, 2.0 / 3.0, 1.0 / 3.0])
    wave = np.clip(np.abs(((hue + channel_offsets) * 6.0) % 6.0 - 3.0) - 1.0, 0.0, 1.0)
    return 255.0 * value * (1.0 - saturation + saturation * wave)


def _smooth_track(rng: np.random.Generator, times: np.ndarray, amplitude: float) -> np.ndarray:
    """Sum of three low-frequency sinusoids (0.05..0.8 Hz), peak magnitude <= amplitude."""
    frequencies = rng.uniform(0.05, 0.8, 3)
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    weights = rng.uniform(0.2, 1.0, 3)
    waves = np.sin(2.0 * np.pi * frequencies[:, None] * times[None, :] + phases[:, None])
    return amplitude * (weights @ waves) / weights.sum()


def sample_motion(
    rng: np.random.Generator, num_frames: int, fps: float = 25
) -> tuple[list[HeadPose], list[Lighting]]:
    """Smooth small head motion (rotation <= ~4 deg, translation <= ~4 px, scale +-5%) and a
    slow lighting drift (gain within 0.8..1.2), one of each per frame."""
    if num_frames < 0:
        raise ValueError(f"num_frames: expected >= 0, got {num_frames}")
    if fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    times = np.arange(num_frames) / fps
    rotation = rng.uniform(-1.0, 1.0) + _smooth_track(rng, times, rng.uniform(0.5, 3.0))
    dx = rng.uniform(-1.0, 1.0) + _smooth_track(rng, times, rng.uniform(0.5, 3.0))
    dy = rng.uniform(-1.0, 1.0) + _smooth_track(rng, times, rng.uniform(0.5, 3.0))
    scale = 1.0 + rng.uniform(-0.02, 0.02) + _smooth_track(rng, times, rng.uniform(0.005, 0.03))
    gain = rng.uniform(0.88, 1.12) + _smooth_track(rng, times, rng.uniform(0.0, 0.06))
    strength = rng.uniform(0.0, 0.3) + _smooth_track(rng, times, 0.05)
    direction = rng.uniform(0.0, 2.0 * np.pi) + _smooth_track(rng, times, 0.4)
    poses = [
        HeadPose(float(r), float(x), float(y), float(s))
        for r, x, y, s in zip(rotation, dx, dy, scale, strict=True)
    ]
    lightings = [
        Lighting(float(g), (float(m * np.cos(a)), float(m * np.sin(a))))
        for g, m, a in zip(gain, np.abs(strength), direction, strict=True)
    ]
    return poses, lightings


@dataclasses.dataclass(frozen=True)
class _MouthShape:
    """Per-frame mouth geometry in local reference pixels; every field has shape (N,)."""

    half_width: np.ndarray  # corners at x = +-half_width
    inner_half_width: np.ndarray
    corner_y: np.ndarray  # lip line: y = corner_y * (x / half_width)^2
    gap_upper: np.ndarray  # inner upper lip lifts this much above the line at the centre
    gap_lower: np.ndarray  # inner lower lip drops this much (negative: raised, for f/v)
    inner_fullness: np.ndarray  # 0 lens-shaped .. 1 round opening
    outer_fullness: np.ndarray
    upper_thickness: np.ndarray
    lower_thickness: np.ndarray
    bow: np.ndarray  # cupid's bow dip, fraction of the upper thickness
    teeth_edge_y: np.ndarray  # upper incisor edge at the centre
    lower_teeth_show: np.ndarray  # how far the lower incisors rise above the lower lip
    tongue_tip: np.ndarray  # 0..1 opacity of the tongue tip between the teeth
    jaw_drop: np.ndarray  # chin displacement


def _smoothstep(low: float, high: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - low) / (high - low), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _mouth_shape(appearance: Appearance, articulation: np.ndarray) -> _MouthShape:
    """Maps articulation (N, 7) to mouth geometry. Closure multiplies every opening by
    (1 - closure), so closure = 1 gives an inner gap of exactly zero."""
    params = np.clip(articulation.astype(np.float64), ARTICULATION_LOW, ARTICULATION_HIGH)
    open_, spread, round_, protrude, closure, lip_teeth, tongue = params.T
    free = 1.0 - closure
    opening = open_ * free
    labiodental = lip_teeth * free
    tongue_out = tongue * free
    smile = np.maximum(spread, 0.0)

    half_width = appearance.mouth_half_width * (
        1.0 + 0.16 * spread - 0.24 * round_ - 0.07 * protrude - 0.05 * opening
    )
    # A visible tongue tip needs the lips a little apart even when `open` is 0.
    gap = appearance.max_opening * opening + 4.5 * tongue_out * (1.0 - opening)
    gap_upper = 0.33 * gap + 4.5 * labiodental  # f/v: the upper lip lifts off the teeth
    gap_lower = 0.67 * gap - 1.0 * labiodental  # and the lower lip rises under them
    inner_half_width = half_width * (0.9 - 0.45 * round_ - 0.1 * opening)
    inner_fullness = np.clip(0.15 + 0.8 * round_ + 0.35 * opening - 0.15 * smile, 0.0, 1.0)
    outer_fullness = np.maximum(inner_fullness, np.clip(0.35 + 0.55 * round_, 0.0, 1.0))
    thickness = 1.0 + 0.4 * protrude + 0.2 * round_ - 0.15 * smile - 0.15 * closure
    thickness = thickness - 0.2 * opening
    return _MouthShape(
        half_width=half_width,
        inner_half_width=inner_half_width,
        corner_y=appearance.corner_tilt - 1.8 * spread + 1.5 * opening,
        gap_upper=gap_upper,
        gap_lower=gap_lower,
        inner_fullness=inner_fullness,
        outer_fullness=outer_fullness,
        upper_thickness=appearance.upper_lip_thickness * thickness,
        lower_thickness=appearance.lower_lip_thickness * thickness * (1.0 - 0.3 * labiodental),
        bow=np.full_like(open_, appearance.cupid_bow_depth),
        teeth_edge_y=1.0 + 0.5 * labiodental,
        lower_teeth_show=3.5 * _smoothstep(0.45, 1.0, opening),
        tongue_tip=tongue_out,
        jaw_drop=0.55 * np.maximum(gap_lower, 0.0),
    )


# ----------------------------------------------------------------------------------------
# Contours: functions of local x, evaluated on landmark samples (N, K) or pixels (n, H, W)
# with the shape parameters broadcast as (N, 1) or (n, 1, 1).


def _profile(t, fullness):
    """Opening profile on t in [-1, 1]: 1 at the centre, 0 at the corners, negative
    beyond (so upper and lower curves cross and enclose nothing). Finite slope at the
    corners; fullness 0 is a parabola, 1 is the rounder 1 - t^4. Returns value, d/dt."""
    t2 = t * t
    value = (1.0 - t2) * (1.0 + fullness * t2)
    slope = 2.0 * t * (fullness - 1.0 - 2.0 * fullness * t2)
    return value, slope


_BOW_WIDTH = 0.16  # width of the cupid's bow dip, fraction of the half-width
_UPPER_LIP_FULLNESS = 0.6
_LOWER_LIP_FULLNESS = 0.35


def _contours(x, shape: dict) -> dict:
    """Lip contour heights y(x) and slopes dy/dx: outer upper/lower, inner upper/lower."""
    half_width, inner_half_width = shape["half_width"], shape["inner_half_width"]
    t = x / half_width
    ti = x / inner_half_width
    line = shape["corner_y"] * t * t
    line_slope = 2.0 * shape["corner_y"] * t / half_width

    inner, inner_dt = _profile(ti, shape["inner_fullness"])
    inner_slope = inner_dt / inner_half_width
    outer, outer_dt = _profile(t, shape["outer_fullness"])
    outer_slope = outer_dt / half_width

    upper_body, upper_body_dt = _profile(t, _UPPER_LIP_FULLNESS)
    dip = shape["bow"] * np.exp(-((t / _BOW_WIDTH) ** 2))
    dip_dt = dip * (-2.0 * t / _BOW_WIDTH**2)
    upper = upper_body * (1.0 - dip)
    upper_slope = (upper_body_dt * (1.0 - dip) - upper_body * dip_dt) / half_width
    lower, lower_dt = _profile(t, _LOWER_LIP_FULLNESS)
    lower_slope = lower_dt / half_width

    gap_upper, gap_lower = shape["gap_upper"], shape["gap_lower"]
    thick_upper, thick_lower = shape["upper_thickness"], shape["lower_thickness"]
    return {
        "inner_upper": line - gap_upper * inner,
        "inner_upper_slope": line_slope - gap_upper * inner_slope,
        "inner_lower": line + gap_lower * inner,
        "inner_lower_slope": line_slope + gap_lower * inner_slope,
        "outer_upper": line - gap_upper * outer - thick_upper * upper,
        "outer_upper_slope": line_slope - gap_upper * outer_slope - thick_upper * upper_slope,
        "outer_lower": line + gap_lower * outer + thick_lower * lower,
        "outer_lower_slope": line_slope + gap_lower * outer_slope + thick_lower * lower_slope,
    }


def _mouth_landmarks_local(shape: _MouthShape) -> np.ndarray:
    """The 20 mouth landmarks (N, 20, 2) in local coordinates, in dlib order 48..67."""
    fields = {k: v[:, None] for k, v in dataclasses.asdict(shape).items()}
    half_width, inner_half_width = fields["half_width"], fields["inner_half_width"]
    one = np.ones_like(half_width)

    def curve(name: str, x: np.ndarray) -> np.ndarray:
        return np.stack([x, _contours(x, fields)[name]], axis=-1)

    return np.concatenate(
        [
            curve("outer_upper", -half_width * one),  # 48: at the corner every curve meets
            curve("outer_upper", _OUTER_UPPER_T * half_width),  # 49..53
            curve("outer_upper", half_width * one),  # 54
            curve("outer_lower", _OUTER_LOWER_T * half_width),  # 55..59
            curve("inner_upper", -inner_half_width * one),  # 60
            curve("inner_upper", _INNER_UPPER_T * inner_half_width),  # 61..63
            curve("inner_upper", inner_half_width * one),  # 64
            curve("inner_lower", _INNER_LOWER_T * inner_half_width),  # 65..67
        ],
        axis=1,
    )


# ----------------------------------------------------------------------------------------
# Pixel fields. Distances are in local units; `ppu` (output pixels per local unit) turns
# them into pixels for anti-aliasing.


def _coverage(distance_inside_pixels):
    """Box-filter coverage of a pixel by a half-plane at this signed distance (+ inside)."""
    return np.clip(0.5 + distance_inside_pixels, 0.0, 1.0)


def _below(y, curve, slope, ppu):
    """Coverage of the region below (larger y than) the curve."""
    return _coverage((y - curve) * ppu / np.sqrt(1.0 + slope * slope))


def _above(y, curve, slope, ppu):
    return _coverage((curve - y) * ppu / np.sqrt(1.0 + slope * slope))


def _band(below_upper, above_lower):
    """Coverage of the region between two curves: exact for thin slits and gaps of 0."""
    return np.maximum(below_upper + above_lower - 1.0, 0.0)


def _ellipse_distance(x, y, cx, cy, rx, ry):
    """First-order signed distance to an ellipse (negative inside)."""
    px = (x - cx) / rx
    py = (y - cy) / ry
    gradient = 2.0 * np.sqrt((px / rx) ** 2 + (py / ry) ** 2) + 1e-6
    return (px * px + py * py - 1.0) / gradient


def _mix(image, coverage, colour):
    """Composites `colour` ((..., 3) or (3,)) over `image` with `coverage` (...)."""
    image += coverage[..., None] * (colour - image)


def _make_texture(appearance: Appearance) -> np.ndarray:
    """Static texture (2R+1, 2R+1, 2) in local units: skin shade variation (mottle and
    grain, zero mean) and hair opacity (0..1). Deterministic in appearance.texture_seed."""
    rng = np.random.default_rng(appearance.texture_seed)
    side = 2 * _TEXTURE_RADIUS + 1

    def noise(sigma) -> np.ndarray:
        field = ndimage.gaussian_filter(rng.standard_normal((side, side)), sigma)
        return field / (field.std() + 1e-9)

    mottle, grain = noise(6.0), noise(0.7)
    if appearance.facial_hair == "stubble":  # an even shadow of short, fine hairs
        hair = np.clip(0.5 + 0.3 * noise(0.5), 0.0, 1.0)
    else:
        hair = np.clip(0.75 + 0.15 * noise(2.0) + 0.25 * noise((1.6, 0.5)), 0.0, 1.0)
    skin_variation = 0.035 * mottle + 0.012 * grain
    return np.stack([skin_variation, hair], axis=-1).astype(np.float32)


def _sample_texture(texture: np.ndarray, x, y, channels: Sequence[int]) -> list:
    """Bilinear lookup of texture channels at local coordinates, one (...) array each."""
    side = texture.shape[0]
    u = np.clip(x + _TEXTURE_RADIUS, 0.0, side - 1.001)
    v = np.clip(y + _TEXTURE_RADIUS, 0.0, side - 1.001)
    u0 = u.astype(np.int32)
    v0 = v.astype(np.int32)
    fu = u - u0
    fv = v - v0
    index = v0 * side + u0  # flat indexing: np.take is much faster than 2-D fancy indexing
    samples = []
    for channel in channels:
        flat = np.ascontiguousarray(texture[..., channel]).ravel()
        top_left, top_right = np.take(flat, index), np.take(flat, index + 1)
        bottom_left, bottom_right = np.take(flat, index + side), np.take(flat, index + side + 1)
        top = top_left + fu * (top_right - top_left)
        bottom = bottom_left + fu * (bottom_right - bottom_left)
        samples.append(top + fv * (bottom - top))
    return samples


def _local_coordinates(poses: Sequence[HeadPose], size: int):
    """Local coordinates (n, size, size) of the pixel centres, and ppu (n, 1, 1): output
    pixels per local unit."""
    angle = np.radians([p.rotation_deg for p in poses])
    ppu = np.array([p.scale for p in poses]) * (size / REFERENCE_SIZE)
    cos, sin = np.cos(angle) / ppu, np.sin(angle) / ppu
    centres = np.arange(size) + 0.5
    px = centres[None, None, :] - (size / 2.0 + np.array([p.dx for p in poses]))[:, None, None]
    py = centres[None, :, None] - (size / 2.0 + np.array([p.dy for p in poses]))[:, None, None]
    local_x = (cos[:, None, None] * px + sin[:, None, None] * py).astype(np.float32)
    local_y = (cos[:, None, None] * py - sin[:, None, None] * px).astype(np.float32)
    return local_x, local_y, ppu.astype(np.float32)[:, None, None]


def _to_image(points: np.ndarray, poses: Sequence[HeadPose], size: int) -> np.ndarray:
    """Local points (N, K, 2) -> image coordinates (N, K, 2)."""
    angle = np.radians([p.rotation_deg for p in poses])[:, None]
    ppu = (np.array([p.scale for p in poses]) * (size / REFERENCE_SIZE))[:, None]
    cos, sin = np.cos(angle) * ppu, np.sin(angle) * ppu
    x, y = points[..., 0], points[..., 1]
    image_x = size / 2.0 + np.array([p.dx for p in poses])[:, None] + cos * x - sin * y
    image_y = size / 2.0 + np.array([p.dy for p in poses])[:, None] + sin * x + cos * y
    return np.stack([image_x, image_y], axis=-1)


def _window(x_range, y_range, poses: Sequence[HeadPose], size: int) -> tuple[slice, slice]:
    """Row and column slices of the image that cover the local box x_range x y_range
    (bounds are scalars or per-frame (n,) arrays) in all these frames."""
    n = len(poses)
    x_low, x_high = (np.broadcast_to(np.ravel(v), (n,)) for v in x_range)
    y_low, y_high = (np.broadcast_to(np.ravel(v), (n,)) for v in y_range)
    corners = np.stack(
        [
            np.stack([x_low, y_low], -1),
            np.stack([x_high, y_low], -1),
            np.stack([x_low, y_high], -1),
            np.stack([x_high, y_high], -1),
        ],
        axis=1,
    )
    image_corners = _to_image(corners, poses, size).reshape(-1, 2)
    first = np.clip(np.floor(image_corners.min(axis=0)).astype(int) - 1, 0, size)
    last = np.clip(np.ceil(image_corners.max(axis=0)).astype(int) + 1, 0, size)
    return slice(first[1], last[1]), slice(first[0], last[0])


def _draw_face(image, x, y, ppu, appearance: Appearance, shape: dict, texture, window) -> None:
    """Background, neck, face skin with its shading, nose and facial hair, in place.

    `window(x_range, y_range)` gives the image slices of a local box: features that are
    only a small part of the frame are shaded inside their box only, for speed."""
    skin = np.asarray(appearance.skin_rgb, np.float32)
    abs_x = np.abs(x)
    chin = appearance.chin_y + shape["jaw_drop"]
    exponent = appearance.jaw_roundness
    has_hair = appearance.facial_hair != "none" and appearance.hair_density > 0
    skin_variation, *hair_texture = _sample_texture(texture, x, y, (0, 1) if has_hair else (0,))

    # Face region: a superellipse jaw, widened by a flat chin of half-width c:
    # (max(|x| - c, 0) / (a - c))^n + (max(y - y_angle, 0) / (chin - y_angle))^n <= 1.
    side = np.maximum(abs_x - appearance.chin_half_width, 0.0)
    side_radius = appearance.jaw_half_width - appearance.chin_half_width
    below_angle = np.maximum(y - appearance.jaw_angle_y, 0.0)
    qx_n = (side / side_radius) ** exponent
    qy_n = (below_angle / (chin - appearance.jaw_angle_y)) ** exponent
    jaw_gradient = exponent * np.sqrt(
        (qx_n / np.maximum(side, 1e-3)) ** 2 + (qy_n / np.maximum(below_angle, 1e-3)) ** 2
    )
    jaw_distance = (qx_n + qy_n - 1.0) / (jaw_gradient + 1e-6)  # negative inside the face
    face = _coverage(-jaw_distance * ppu)

    # Neck: darker skin, in the shadow of the jaw near the jaw line.
    neck = _coverage((appearance.neck_half_width - abs_x) * ppu)
    neck_shade = 0.68 - 0.25 * np.exp(-np.maximum(jaw_distance, 0.0) / 7.0)
    neck_shade *= 1.0 - 0.25 * (abs_x / appearance.neck_half_width) ** 2

    shade = 1.0 + skin_variation
    shade -= 0.2 * np.minimum(abs_x / appearance.jaw_half_width, 1.0) ** 4  # cheeks turn away
    shade -= 0.12 * np.exp(np.minimum(jaw_distance, 0.0) / 5.0) * _smoothstep(-10, 20, y)

    nose_base, nose_half_width = appearance.nose_base_y, appearance.nose_half_width
    rows, cols = window((-nose_half_width - 8.0, nose_half_width + 8.0), (-1e3, -1.0))
    _shade_nose(shade[:, rows, cols], x[:, rows, cols], y[:, rows, cols], ppu, appearance)

    # Nasolabial folds from the nose wings down past the mouth corners.
    rows, cols = window((-60.0, 60.0), (nose_base - 6.0, nose_base + 50.0))
    fold_x, fold_y = np.abs(x[:, rows, cols]), y[:, rows, cols]
    fold_centre = nose_half_width + 1.0 + 0.42 * (fold_y - nose_base) + 0.15 * shape["half_width"]
    fold_extent = np.exp(-(((fold_y - nose_base - 19.0) / 17.0) ** 4))
    shade[:, rows, cols] -= 0.07 * np.exp(-(((fold_x - fold_centre) / 2.2) ** 2)) * fold_extent

    # Labiomental fold under the lower lip, highlight on the chin.
    fold_height = shape["gap_lower"] + shape["lower_thickness"] + 4.5 + 0.2 * shape["jaw_drop"]
    rows, cols = window((-36.0, 36.0), (fold_height - 8.0, chin + 4.0))
    chin_x, chin_y = x[:, rows, cols], y[:, rows, cols]
    shade[:, rows, cols] += 0.07 * np.exp(-((chin_x / 15.0) ** 2) - ((chin_y - chin + 11) / 7) ** 2)
    shade[:, rows, cols] -= 0.1 * np.exp(
        -(((chin_y - fold_height) / 2.5) ** 2) - (chin_x / 13.0) ** 2
    )

    # Face over neck over background, as one composite of two skin shades.
    skin_cover = neck + face * (1.0 - neck)
    skin_shade = neck_shade + face / np.maximum(skin_cover, 1e-6) * (shade - neck_shade)
    _mix(image, skin_cover, skin_shade[..., None] * skin)

    if has_hair:
        hair = _facial_hair_mask(x, y, appearance, shape, ppu) * face
        hair *= appearance.hair_density * hair_texture[0]
        hair_colour = (1.0 + 4.0 * skin_variation[..., None]) * np.asarray(
            appearance.hair_rgb, np.float32
        )
        _mix(image, hair, hair_colour)


def _shade_nose(shade, x, y, ppu, appearance: Appearance) -> None:
    """Adds the nose base, nostrils, the shadow under the nose and the philtrum to `shade`."""
    nose_base, nose_half_width = appearance.nose_base_y, appearance.nose_half_width
    abs_x = np.abs(x)
    # The tip, wings and bridge catch the light, a crease runs round the outside of each
    # wing, the underside is in shadow.
    tip = _ellipse_distance(abs_x, y, 0.0, nose_base - 11.0, 0.55 * nose_half_width, 11.0)
    wing = _ellipse_distance(
        abs_x, y, 0.72 * nose_half_width, nose_base - 6.0, 0.38 * nose_half_width, 6.5
    )
    bridge = np.maximum(abs_x - 0.4 * nose_half_width, y - (nose_base - 14.0))
    nose = np.minimum(np.minimum(tip, wing), bridge)
    shade += 0.05 * _coverage(-nose * ppu * 0.5)
    shade += 0.08 * np.exp(-((x / 6.0) ** 2) - ((y - nose_base + 10.0) / 6.0) ** 2)
    outer_wing = _smoothstep(0.5 * nose_half_width, 0.85 * nose_half_width, abs_x)
    shade -= 0.22 * np.exp(-((wing / 1.3) ** 2)) * outer_wing
    shade -= 0.12 * np.exp(-((nose / 1.5) ** 2)) * _smoothstep(nose_base - 7.0, nose_base, y)
    below_nose = np.maximum(y - nose_base, 0.0)
    shade -= 0.16 * np.exp(-below_nose / 3.0 - (x / 13.0) ** 2)
    # Philtrum: a groove from the nose to the upper lip between two faint ridges.
    philtrum = appearance.philtrum_depth * _smoothstep(nose_base, nose_base + 5.0, y)
    philtrum *= _smoothstep(-2.0, -12.0, y)
    shade -= 0.06 * philtrum * np.exp(-((x / 2.5) ** 2))
    shade += 0.04 * philtrum * np.exp(-(((abs_x - 4.5) / 1.5) ** 2))
    nostril = _ellipse_distance(
        abs_x, y + 0.25 * (abs_x - 0.42 * nose_half_width),
        0.42 * nose_half_width, nose_base - 2.6, 0.22 * nose_half_width, 2.2,
    )  # fmt: skip
    shade *= 1.0 - 0.8 * appearance.nostril_darkness * _coverage(-nostril * ppu)


def _facial_hair_mask(x, y, appearance: Appearance, shape: dict, ppu):
    """Where facial hair grows (0..1): a band above the upper lip (moustache), the chin and
    jaw below the lower lip (beard); stubble covers both. Lips stay clear."""
    half_width = shape["half_width"]
    abs_x = np.abs(x)
    clamped_x = np.clip(x, -0.95 * half_width, 0.95 * half_width)
    lips = _contours(clamped_x, shape)
    beyond = np.maximum(abs_x - 0.95 * half_width, 0.0)
    moustache_bottom = lips["outer_upper"] - 0.8 + 0.5 * beyond
    moustache_top = moustache_bottom - 9.0 * (1.0 - 0.4 * (x / (half_width + 8.0)) ** 2)
    moustache = _coverage((y - moustache_top) * ppu * 0.5) * _coverage((moustache_bottom - y) * ppu)
    moustache *= _coverage((half_width + 7.0 - abs_x) * ppu * 0.3)
    if appearance.facial_hair == "moustache":
        return moustache
    beard_top = lips["outer_lower"] + 1.2 - 26.0 * _smoothstep(0.9, 1.6, abs_x / half_width)
    beard = _coverage((y - beard_top) * ppu * 0.5)
    return np.maximum(moustache, beard)


def _draw_mouth(image, x, y, ppu, appearance: Appearance, shape: dict):
    """Lips and, where they part, the cavity with teeth and tongue, in place."""
    curves = _contours(x, shape)
    outer = _band(
        _below(y, curves["outer_upper"], curves["outer_upper_slope"], ppu),
        _above(y, curves["outer_lower"], curves["outer_lower_slope"], ppu),
    )
    upper_edge = _below(y, curves["inner_upper"], curves["inner_upper_slope"], ppu)
    lower_edge = _above(y, curves["inner_lower"], curves["inner_lower_slope"], ppu)
    cavity = _band(upper_edge, lower_edge)

    # Lip colour: upper lip a little darker (faces down), darker towards the lip line and
    # the outer edge, a soft highlight on the lower lip.
    line_distance = np.maximum(curves["inner_upper"] - y, y - curves["inner_lower"])
    line_distance = np.maximum(line_distance, 0.0)
    lip_shade = 0.86 + 0.14 * _smoothstep(-1.5, 1.5, y - curves["inner_lower"])
    lip_shade = lip_shade * (1.0 - 0.35 * np.exp(-((line_distance / 1.6) ** 2)))
    # The highlight brightens the lip colour rather than whitening it, so the lower lip
    # stays lip-coloured.
    lower_centre = shape["gap_lower"] + 0.33 * shape["lower_thickness"]
    highlight = 0.18 * np.exp(
        -((x / (0.3 * shape["half_width"])) ** 2)
        - ((y - lower_centre) / (0.14 * shape["lower_thickness"])) ** 2
    )
    outer_distance = np.minimum(y - curves["outer_upper"], curves["outer_lower"] - y)
    lip_shade *= (0.9 + 0.1 * _smoothstep(0.0, 2.0, outer_distance)) * (1.0 + highlight)
    lip_colour = np.minimum(lip_shade[..., None] * np.asarray(appearance.lip_rgb, np.float32), 255)
    _mix(image, outer, lip_colour)

    if not np.any(cavity > 0):
        return
    # Mouth interior, back to front: dark cavity, tongue body, lower teeth, upper teeth,
    # tongue tip.
    depth = _smoothstep(-0.5 * shape["gap_upper"] - 1.0, shape["gap_lower"] + 1.0, y)
    cavity_rgb = np.minimum(_CAVITY_RGB, 0.45 * np.asarray(appearance.lip_rgb, np.float32))
    interior = (0.55 + 0.45 * depth)[..., None] * cavity_rgb

    lower_lip_inner = shape["gap_lower"]
    inner_half_width = shape["inner_half_width"]
    arch = np.clip(x / (inner_half_width + 1e-3), -1.5, 1.5)
    tongue_top = lower_lip_inner - (0.4 * np.maximum(lower_lip_inner, 0.0) + 1.5) * (
        1.0 - 0.7 * arch * arch
    )
    tongue = _coverage((y - tongue_top) * ppu)
    tongue_shade = 0.55 + 0.35 * _smoothstep(0.0, 5.0, y - tongue_top)
    _mix(interior, tongue, tongue_shade[..., None] * _TONGUE_RGB)

    teeth = np.asarray(appearance.teeth_rgb, np.float32)
    recede = np.clip(1.0 - 0.55 * (x / appearance.mouth_half_width) ** 2, 0.25, 1.0)
    lower_teeth_top = lower_lip_inner - shape["lower_teeth_show"] + 0.012 * x * x
    lower_teeth = _coverage((y - lower_teeth_top) * ppu)
    gaps = 1.0 - 0.25 * np.exp(-((np.sin(np.pi * x / 3.8) / 0.22) ** 2))
    _mix(interior, lower_teeth, (0.72 * recede * gaps)[..., None] * teeth)

    teeth_edge = shape["teeth_edge_y"] - 0.014 * x * x
    upper_teeth = _coverage((teeth_edge - y) * ppu)
    gaps = 1.0 - 0.3 * np.exp(-((np.sin(np.pi * x / 5.4) / 0.2) ** 2))
    under_lip = 0.7 + 0.3 * _smoothstep(0.0, 3.0, y - curves["inner_upper"])
    _mix(interior, upper_teeth, (recede * gaps * under_lip)[..., None] * teeth)

    tip = _ellipse_distance(
        x, y, 0.0, shape["teeth_edge_y"] + 2.0, 0.45 * inner_half_width + 1.0, 3.2
    )
    tip_cover = _coverage(-tip * ppu) * shape["tongue_tip"]
    tip_shade = 1.05 - 0.25 * _smoothstep(-2.0, 3.0, y - shape["teeth_edge_y"] - 2.0)
    _mix(interior, tip_cover, tip_shade[..., None] * _TONGUE_RGB)

    _mix(image, cavity, interior)


def _validate(articulation, poses, lightings, size, noise_std, blur_sigma):
    """Checks render_video's arguments; returns articulation, poses and lightings."""
    articulation = np.asarray(articulation)
    poses, lightings = list(poses), list(lightings)
    if articulation.ndim != 2 or articulation.shape[1] != len(ARTICULATION_FIELDS):
        raise ValueError(
            f"articulation: expected shape (N, {len(ARTICULATION_FIELDS)}) with columns "
            f"{ARTICULATION_FIELDS}, got {articulation.shape}"
        )
    if not np.issubdtype(articulation.dtype, np.number):
        raise ValueError(f"articulation: expected a numeric array, got dtype {articulation.dtype}")
    if not np.all(np.isfinite(articulation)):
        raise ValueError("articulation: contains NaN or inf")
    num_frames = articulation.shape[0]
    if len(poses) != num_frames:
        raise ValueError(f"poses: expected {num_frames} (one per frame), got {len(poses)}")
    if len(lightings) != num_frames:
        raise ValueError(f"lightings: expected {num_frames} (one per frame), got {len(lightings)}")
    if int(size) != size or size < 64:
        raise ValueError(f"size: expected an integer >= 64, got {size}")
    if not noise_std >= 0:
        raise ValueError(f"noise_std: expected >= 0, got {noise_std}")
    if not blur_sigma >= 0:
        raise ValueError(f"blur_sigma: expected >= 0, got {blur_sigma}")
    if any(not p.scale > 0 for p in poses):
        raise ValueError("poses: expected every scale > 0")
    return articulation, poses, lightings


def render_video(
    appearance: Appearance,
    articulation: np.ndarray,
    poses: Sequence[HeadPose],
    lightings: Sequence[Lighting],
    rng: np.random.Generator,
    size: int = 128,
    noise_std: float = 2.0,
    blur_sigma: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Renders N frames of the lower face and the mouth landmarks.

    Args:
      appearance: the speaker's look.
      articulation: (N, 7) in ARTICULATION_FIELDS order; values are clipped to their ranges.
      poses, lightings: one per frame.
      rng: source of the pixel noise (the only randomness).
      size: frame side in pixels (>= 64); geometry scales with size / 128.
      noise_std, blur_sigma: Gaussian noise std (intensity units) and blur sigma (pixels).

    Returns:
      frames (N, size, size, 3) uint8 and landmarks (N, 20, 2) float32: dlib points 48..67
      as continuous (x, y), pixel (i, j) covering x in [j, j + 1), y in [i, i + 1).
    """
    articulation, poses, lightings = _validate(
        articulation, poses, lightings, size, noise_std, blur_sigma
    )
    size = int(size)
    num_frames = articulation.shape[0]
    shape = _mouth_shape(appearance, articulation)
    local_landmarks = _mouth_landmarks_local(shape)
    landmarks = _to_image(local_landmarks, poses, size).astype(np.float32)
    frames = np.empty((num_frames, size, size, 3), np.float32)
    if num_frames == 0:
        return frames.astype(np.uint8), landmarks.reshape(0, NUM_MOUTH_LANDMARKS, 2)

    texture = _make_texture(appearance)
    background = np.asarray(appearance.background_rgb, np.float32)
    shape_fields = dataclasses.asdict(shape)
    margin = 4.0  # the upper lip's bow peaks may rise a little above the landmarks
    mouth_low = local_landmarks.min(axis=1) - margin
    mouth_high = local_landmarks.max(axis=1) + margin
    for start in range(0, num_frames, _FRAMES_PER_CHUNK):
        chunk = slice(start, min(start + _FRAMES_PER_CHUNK, num_frames))
        chunk_poses = poses[chunk]
        chunk_shape = {
            k: v[chunk].astype(np.float32)[:, None, None] for k, v in shape_fields.items()
        }

        def window(x_range, y_range, chunk_poses=chunk_poses):
            return _window(x_range, y_range, chunk_poses, size)

        x, y, ppu = _local_coordinates(chunk_poses, size)
        image = frames[chunk]
        image[:] = background
        _draw_face(image, x, y, ppu, appearance, chunk_shape, texture, window)
        rows, cols = window(
            (mouth_low[chunk, 0], mouth_high[chunk, 0]), (mouth_low[chunk, 1], mouth_high[chunk, 1])
        )
        _draw_mouth(
            image[:, rows, cols], x[:, rows, cols], y[:, rows, cols], ppu, appearance, chunk_shape
        )

    _apply_lighting(frames, lightings)
    if blur_sigma > 0:
        frames = ndimage.gaussian_filter(frames, (0, blur_sigma, blur_sigma, 0), mode="nearest")
    if noise_std > 0:
        frames += noise_std * rng.standard_normal(frames.shape, dtype=np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), landmarks


def _apply_lighting(frames: np.ndarray, lightings: Sequence[Lighting]) -> None:
    size = frames.shape[1]
    ramp = ((np.arange(size) + 0.5) / size - 0.5).astype(np.float32)
    gain = np.array([light.gain for light in lightings], np.float32)[:, None, None]
    gx = np.array([light.gradient[0] for light in lightings], np.float32)[:, None, None]
    gy = np.array([light.gradient[1] for light in lightings], np.float32)[:, None, None]
    factor = gain * (1.0 + gx * ramp[None, None, :] + gy * ramp[None, :, None])
    frames *= factor[..., None]
