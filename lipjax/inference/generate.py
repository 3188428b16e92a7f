"""generate(): lip videos for speech of any length and one image of a face.

    from lipjax.inference import generate
    frames = generate(None, "speech.wav", "face.jpg")  # lipjax's default weights

    python -m lipjax.cli.generate --audio=speech.wav --image=face.jpg --output=out.mp4
    python -m lipjax.cli.generate --checkpoint=runs/synthetic_long --batch=pairs.csv --output=DIR

The paper generates fixed 16-frame clips. Longer speech is cut into 16-frame windows with
a hop of 8 frames; each frame is the average of the windows covering it, weighted by a
Hann window over each window's frames (Hann windows at 50% overlap sum to a constant, so
every frame blends smoothly from one window into the next and no seam shows). The log-mel
front end runs in JAX on the accelerator (`lipjax.data.audio.log_mel` with `jax.numpy`, tested
against librosa).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import logging
import math
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lipjax.data import audio as audio_lib
from lipjax.data import crop as crop_lib
from lipjax.inference.weights import Weights, load_weights

WINDOW_FRAMES = 16
DEFAULT_HOP_FRAMES = 8
DEFAULT_BATCH_WINDOWS = 16
FPS = audio_lib.VIDEO_FPS
# Face photos larger than this (longer side, pixels) are searched for a face at this size.
DETECTION_MAX_SIDE = 1024
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class FacePlacement:
    """Where the lip crop came from in a face photo: the crop square of
    (docs/design.md, "Lip crops")."""

    centre: np.ndarray  # (x, y) in photo pixels
    half_size: float


# ------------------------------------------------------------------------------- inputs


def load_audio(audio: Any, sample_rate: int | None = None, name: str = "audio") -> np.ndarray:
    """Mono float32 speech at 44.1 kHz from a path or a waveform of any rate.

    Arrays need `sample_rate`; stereo (samples, channels) or (channels, samples) is mixed
    down; integer PCM is scaled to [-1, 1]. Raises ValueError naming `name` for an empty,
    non-finite or undecodable input.
    """
    if isinstance(audio, str | os.PathLike):
        path = pathlib.Path(audio)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: {path} does not exist")
        import librosa

        try:
            waveform, sample_rate = librosa.load(path, sr=None, mono=False)
        except Exception as error:  # any decoder failure means a bad file
            raise ValueError(f"{name}: could not decode {path} as audio ({error})") from None
        name = f"{name} {path}"
    else:
        if sample_rate is None:
            raise ValueError(
                f"{name}: a waveform needs its sample rate: generate(..., sample_rate=16000)"
            )
        waveform = np.asarray(audio)
        if waveform.dtype == object or not np.issubdtype(waveform.dtype, np.number):
            raise ValueError(f"{name}: expected numbers, got dtype {waveform.dtype}")
        if np.issubdtype(waveform.dtype, np.integer):
            waveform = waveform / float(np.iinfo(waveform.dtype).max)
    waveform = np.asarray(waveform, np.float64)
    if waveform.ndim == 2 and min(waveform.shape) > 8:
        raise ValueError(f"{name}: expected mono or a few channels, got shape {waveform.shape}")
    if waveform.ndim not in (1, 2):
        raise ValueError(f"{name}: expected a 1-D (or stereo 2-D) waveform, got {waveform.shape}")
    if waveform.size == 0:
        raise ValueError(f"{name}: the audio is empty")
    if not np.all(np.isfinite(waveform)):
        raise ValueError(f"{name}: the waveform contains NaN or inf samples")
    if not sample_rate or sample_rate < 1000:
        raise ValueError(f"{name}: sample rate {sample_rate} Hz is not a speech rate")
    mono = audio_lib.to_model_rate(waveform, int(sample_rate))
    if np.max(np.abs(mono)) < 1e-4:
        logging.warning("%s is silent: the lips will stay closed", name)
    return mono


def load_image(image: Any, name: str = "image") -> np.ndarray:
    """An RGB uint8 (H, W, 3) image from a path or an array (grey, RGB or RGBA; uint8, or
    floats in [0, 1])."""
    if isinstance(image, str | os.PathLike):
        path = pathlib.Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: {path} does not exist")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as opened:
                array = np.asarray(opened.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{name}: could not read {path} as an image ({error})") from None
        return array
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(
            f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {array.shape}"
        )
    array = array[..., :3]
    if array.size == 0:
        raise ValueError(f"{name}: the image is empty")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: the image contains NaN or inf")
        if array.min() < 0 or array.max() > 1:
            raise ValueError(f"{name}: float images must be in [0, 1], got {array.min()}..")
        array = np.rint(array * 255)
    elif array.dtype != np.uint8:
        raise ValueError(f"{name}: expected uint8 or float pixels, got dtype {array.dtype}")
    return array.astype(np.uint8)


def lip_crop(image: Any, name: str = "image") -> tuple[np.ndarray, FacePlacement | None]:
    """The 64x64 lip crop to condition on, and where it lies in the photo.

    A 64x64 image is taken as a lip crop already (placement None); anything else is a face
    photo: dlib finds the face and its mouth landmarks (the largest photos are searched at
    DETECTION_MAX_SIDE pixels) and the crop rule (docs/design.md, "Lip crops") cuts the crop.
    """
    from lipjax.data.landmarks import MOUTH, DlibLandmarks

    photo = load_image(image, name)
    if photo.shape[:2] == (crop_lib.CROP_SIZE, crop_lib.CROP_SIZE):
        return photo, None
    height, width = photo.shape[:2]
    scale = min(1.0, DETECTION_MAX_SIDE / max(height, width))
    small = photo
    if scale < 1.0:
        from PIL import Image

        small = np.asarray(
            Image.fromarray(photo).resize((round(width * scale), round(height * scale)))
        )
    gray = np.asarray(np.rint(small @ np.array([0.299, 0.587, 0.114])), np.uint8)
    # Upsampling once finds faces down to about 40 px; photos are one frame, so it is cheap.
    detector = DlibLandmarks(upsample=1 if max(small.shape[:2]) <= 640 else 0)
    box = detector.detect(gray)
    if box is None:
        raise ValueError(f"{name}: no face found in the {width}x{height} image")
    points = detector.face_landmarks(gray[None])[0, MOUTH] / scale
    centres, half_sizes = crop_lib.mouth_boxes(points[None])
    crop = crop_lib.crop_frame(photo, centres[0], float(half_sizes[0]))
    return crop, FacePlacement(centres[0], float(half_sizes[0]))


# ------------------------------------------------------------------------------- model


def blend_weights(window: int = WINDOW_FRAMES) -> np.ndarray:
    """Hann weights over a window's frames (never exactly zero, so edges are covered)."""
    t = np.arange(window)
    return (0.5 - 0.5 * np.cos(2 * np.pi * (t + 0.5) / window)).astype(np.float32)


def covering_window_starts(num_frames: int, hop: int, window: int = WINDOW_FRAMES) -> np.ndarray:
    """First frames of the windows that cover `num_frames` frames (the last may overhang)."""
    count = 1 if num_frames <= window else math.ceil((num_frames - window) / hop) + 1
    return np.arange(count) * hop


@functools.partial(jax.jit, static_argnames=("starts", "stats"))
def _audio_windows(
    waveform: jax.Array, starts: tuple[int, ...], stats: audio_lib.LogMelStats
) -> jax.Array:
    """(N, 64, 128, 1) log-mel windows of one utterance normalised with the model's `stats`,
    computed in JAX as the training data were (one STFT over the whole utterance, then cut)."""
    mel = stats.normalize(audio_lib.log_mel(waveform, xp=jnp), xp=jnp)
    per_frame = audio_lib.MELS_PER_VIDEO_FRAME
    index = np.asarray(starts)[:, None] * per_frame + np.arange(WINDOW_FRAMES * per_frame)
    return mel[index][..., None]


def bucket_sizes(batch_windows: int) -> tuple[int, ...]:
    """The window counts a generator call is padded to: powers of two below `batch_windows`,
    then `batch_windows` (16: 1, 2, 4, 8, 16), so a short clip computes few padding windows
    and a generator compiles at most log2(batch_windows) + 1 shapes."""
    sizes = []
    size = 1
    while size < batch_windows:
        sizes.append(size)
        size *= 2
    return (*sizes, batch_windows)


def chunk_plan(total: int, batch_windows: int) -> list[tuple[int, int, int]]:
    """(first window, windows, padded size) of each generator call for `total` windows:
    full calls of `batch_windows`, then the rest padded to the smallest bucket that holds it."""
    plan = []
    for begin in range(0, total, batch_windows):
        count = min(batch_windows, total - begin)
        size = next(b for b in bucket_sizes(batch_windows) if b >= count)
        plan.append((begin, count, size))
    return plan


@functools.partial(jax.jit, static_argnums=0)
def _run_generator(module, variables, audio_windows: jax.Array, identity: jax.Array) -> jax.Array:
    """Clips (n, 16, 64, 64, 3) float32 of n audio windows and one identity (1, 64, 64, 3).

    The variables are an argument, not constants baked into the program: the compiled
    program stays small, and generators of the same architecture (the module, a static
    argument) share it whatever their weights."""
    identities = jnp.broadcast_to(identity, (audio_windows.shape[0], *identity.shape[1:]))
    video, _ = module.apply(variables, audio_windows, identities, train=False)
    return video.astype(jnp.float32)


class LipGenerator:
    """A compiled generator for one set of weights: `__call__(audio, image)` -> frames."""

    def __init__(
        self,
        weights: Weights | str | os.PathLike | None = None,
        *,
        hop: int = DEFAULT_HOP_FRAMES,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
    ):
        if not isinstance(weights, Weights):
            weights = load_weights(weights)
        if not 1 <= hop <= WINDOW_FRAMES:
            raise ValueError(f"hop: expected 1..{WINDOW_FRAMES} frames, got {hop}")
        if batch_windows < 1:
            raise ValueError(f"batch_windows: expected >= 1, got {batch_windows}")
        self.weights, self.hop, self.batch_windows = weights, hop, batch_windows
        self.module = weights.generator()
        self.variables = jax.device_put(weights.variables)
        # Older weights folders have no look-ahead field: their models were trained aligned.
        self.audio_lookahead = audio_lib.check_lookahead(
            weights.model.get("audio_lookahead_frames", 0)
        )
        # Older weights folders have no log-mel statistics: the fixed ones they trained with.
        self.log_mel_stats = audio_lib.model_log_mel_stats(weights.model)

    def windows(self, waveform: np.ndarray) -> tuple[int, np.ndarray, jax.Array]:
        """Frame count T, window starts and the log-mel windows of a 44.1 kHz waveform."""
        num_frames = audio_lib.num_video_frames(len(waveform))
        starts = covering_window_starts(num_frames, self.hop)
        padded_frames = int(starts[-1]) + WINDOW_FRAMES + self.audio_lookahead
        padded = audio_lib.pad_to_video_frames(waveform, padded_frames)
        audio_starts = tuple((starts + self.audio_lookahead).tolist())
        return (
            num_frames,
            starts,
            _audio_windows(jnp.asarray(padded), audio_starts, self.log_mel_stats),
        )

    def clips(self, audio_windows: jax.Array, crop: np.ndarray) -> np.ndarray:
        """Generated clips (n, 16, 64, 64, 3) in [-1, 1] of n audio windows.

        Calls of `batch_windows` windows, the last padded only to the next bucket size
        (`bucket_sizes`); every call is dispatched before any result is copied back, so the
        device runs them back to back and the host waits once."""
        identity = jnp.asarray((crop.astype(np.float32) / 127.5 - 1.0)[None])
        plan = chunk_plan(audio_windows.shape[0], self.batch_windows)
        outputs = []
        for begin, count, size in plan:
            chunk = audio_windows[begin : begin + count]
            if count < size:
                chunk = jnp.pad(chunk, ((0, size - count), (0, 0), (0, 0), (0, 0)))
            outputs.append(_run_generator(self.module, self.variables, chunk, identity))
        host = jax.device_get(outputs)  # one transfer of every call's output
        counts = [count for _, count, _ in plan]
        return np.concatenate([clips[:count] for clips, count in zip(host, counts, strict=True)])

    def __call__(self, audio: Any, image: Any, *, sample_rate: int | None = None) -> np.ndarray:
        return self.generate_with_placement(audio, image, sample_rate=sample_rate)[0]

    def generate_with_placement(
        self, audio: Any, image: Any, *, sample_rate: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, FacePlacement | None]:
        """(frames (T, 64, 64, 3) uint8, the 44.1 kHz waveform, the crop's placement)."""
        waveform = load_audio(audio, sample_rate)
        crop, placement = lip_crop(image)
        num_frames, starts, audio_windows = self.windows(waveform)
        weights = blend_weights()
        total = np.zeros((int(starts[-1]) + WINDOW_FRAMES, *crop.shape), np.float32)
        norm = np.zeros(len(total), np.float32)
        clips = self.clips(audio_windows, crop)
        for start, clip in zip(starts, clips, strict=True):
            total[start : start + WINDOW_FRAMES] += weights[:, None, None, None] * clip
            norm[start : start + WINDOW_FRAMES] += weights
        video = total[:num_frames] / norm[:num_frames, None, None, None]
        frames = np.clip(np.rint((video + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return frames, waveform, placement


@functools.lru_cache(maxsize=4)
def _cached_generator(source: str | None, hop: int) -> LipGenerator:
    return LipGenerator(source, hop=hop)


def generate(
    params: Weights | str | os.PathLike | None,
    audio: Any,
    image: Any,
    *,
    sample_rate: int | None = None,
    hop: int = DEFAULT_HOP_FRAMES,
) -> np.ndarray:
    """Lip frames (T, 64, 64, 3) uint8 at 25 fps, T = ceil(duration * 25).

    Args:
      params: `Weights` (`lipjax.inference.weights.load_weights`), a training run's workdir or a
        weights folder, or None for lipjax's default weights (trained on synthetic_lips).
      audio: a path to an audio file, or a waveform (mono or stereo) with `sample_rate`.
      image: a 64x64 lip crop, or a face photo (path or array) that dlib crops
        (docs/design.md, "Lip crops").
      hop: frames between the starts of overlapping 16-frame windows (16: no overlap).
    """
    if isinstance(params, Weights):
        generator = LipGenerator(params, hop=hop)
    else:
        generator = _cached_generator(None if params is None else str(params), hop)
    return generator(audio, image, sample_rate=sample_rate)


# ------------------------------------------------------------------------------- output


def feather_mask(size: int, feather: float = 0.2) -> np.ndarray:
    """(size, size) weights: 1 inside, falling smoothly to 0 over the outer `feather`
    fraction of each side (a smoothstep), so a pasted crop has no visible edge."""
    ramp = np.clip((np.arange(size) + 0.5) / max(feather * size, 1.0), 0.0, 1.0)
    ramp = np.minimum(ramp, ramp[::-1])
    ramp = ramp * ramp * (3 - 2 * ramp)
    return np.outer(ramp, ramp).astype(np.float32)


def paste_into_photo(photo: np.ndarray, frames: np.ndarray, placement: FacePlacement) -> np.ndarray:
    """Full-face video (T, H, W, 3) uint8: the generated crops resized back to their square
    in the photo and blended in with a feathered edge."""
    from PIL import Image

    photo = load_image(photo, "photo")
    height, width = photo.shape[:2]
    size = max(2, round(2 * placement.half_size))
    left = round(placement.centre[0] - size / 2)
    top = round(placement.centre[1] - size / 2)
    # The part of the square inside the photo.
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + size, width), min(top + size, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("placement: the crop square lies outside the photo")
    mask = feather_mask(size)[y0 - top : y1 - top, x0 - left : x1 - left, None]
    region = photo[y0:y1, x0:x1].astype(np.float32)
    video = np.repeat(photo[None], len(frames), axis=0)
    for index, frame in enumerate(frames):
        resized = np.asarray(
            Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC), np.float32
        )[y0 - top : y1 - top, x0 - left : x1 - left]
        blended = mask * resized + (1.0 - mask) * region
        video[index, y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return video


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    waveform: np.ndarray,
    photo: Any = None,
    placement: FacePlacement | None = None,
    lips_only: bool = False,
) -> pathlib.Path:
    """An H.264 mp4 with the speech as AAC: the full face when a photo and placement are
    given (and not `lips_only`), else the lip crops (enlarged 4x so players show them)."""
    from lipjax.data import video_io

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if placement is not None and photo is not None and not lips_only:
        video = paste_into_photo(photo, frames, placement)
        video = video[:, : video.shape[1] // 2 * 2, : video.shape[2] // 2 * 2]  # yuv420p
    else:
        video = video_io.upscale(frames, 4)
    video_io.write_mp4(path, video, fps=FPS, audio=waveform, sample_rate=audio_lib.SAMPLE_RATE)
    return path


def read_pairs(batch: str | os.PathLike, output_dir: pathlib.Path) -> list[tuple[str, str, str]]:
    """(audio, image, output mp4) triples from a CSV (columns audio,image[,output]; paths
    relative to the CSV) or a folder (each audio file with the image of the same stem)."""
    batch = pathlib.Path(batch)
    pairs = []
    if batch.is_dir():
        images = {p.stem: p for p in batch.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        for audio_path in sorted(batch.iterdir()):
            if audio_path.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            if audio_path.stem not in images:
                raise ValueError(f"batch: {audio_path.name} has no image of the same name")
            pairs.append(
                (
                    str(audio_path),
                    str(images[audio_path.stem]),
                    str(output_dir / f"{audio_path.stem}.mp4"),
                )
            )
    elif batch.is_file():
        with batch.open(newline="") as file:
            reader = csv.DictReader(file)
            if not reader.fieldnames or not {"audio", "image"} <= set(reader.fieldnames):
                raise ValueError(f"batch: {batch} needs a header with columns audio,image")
            for row_number, row in enumerate(reader, start=2):
                audio_path = batch.parent / row["audio"]
                output = row.get("output") or f"{pathlib.Path(row['audio']).stem}.mp4"
                if not row["audio"] or not row["image"]:
                    raise ValueError(f"batch: {batch} line {row_number} misses audio or image")
                pairs.append((str(audio_path), str(batch.parent / row["image"]), output))
        pairs = [(a, i, str(output_dir / o)) for a, i, o in pairs]
    else:
        raise FileNotFoundError(f"batch: {batch} is neither a CSV file nor a folder")
    if not pairs:
        raise ValueError(f"batch: no (audio, image) pairs found in {batch}")
    return pairs
