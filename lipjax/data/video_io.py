"""Writing and reading videos people can watch: H.264 mp4 with AAC sound, and GIFs."""

from __future__ import annotations

import fractions
import os
from collections.abc import Sequence

import numpy as np


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"frames: expected (T, H, W, 3) uint8, got shape {frames.shape} dtype {frames.dtype}"
        )
    if len(frames) == 0:
        raise ValueError("frames: the video has no frames")
    return frames


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement so small crops are watchable."""
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2) if factor > 1 else frames


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 44_100,
    crf: int = 18,
) -> None:
    """Writes (T, H, W, 3) uint8 frames as H.264 (yuv420p) with optional mono AAC audio."""
    import av

    frames = _check_frames(frames)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    with av.open(os.fspath(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf)}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
            sound.bit_rate = 192_000  # the encoder's default (~70 kb/s) audibly distorts
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.clip(np.asarray(audio, np.float32), -1.0, 1.0)
            chunk = 1024
            for start in range(0, len(samples), chunk):
                piece = samples[None, start : start + chunk]
                audio_frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                audio_frame.sample_rate = sample_rate
                audio_frame.pts = start
                audio_frame.time_base = fractions.Fraction(1, sample_rate)
                for packet in sound.encode(audio_frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)


def read_mp4(path: str | os.PathLike) -> tuple[np.ndarray, float, np.ndarray | None, int | None]:
    """Decodes a video file: frames (T, H, W, 3) uint8, fps, mono float32 audio or None,
    and the audio's sample rate or None. Raises ValueError for a corrupt or empty file."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else float("nan")
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        audio, rate = None, None
        with av.open(os.fspath(path)) as container:
            if container.streams.audio:
                stream = container.streams.audio[0]
                rate = stream.rate
                pieces = [f.to_ndarray() for f in container.decode(stream)]
                if pieces:
                    audio = _to_mono_float(pieces, stream.format.name, stream.channels)
    except av.FFmpegError as error:
        raise ValueError(f"{path}: cannot decode ({error})") from error
    if not frames:
        raise ValueError(f"{path}: the video stream has no frames")
    return np.stack(frames), fps, audio, rate


def _to_mono_float(pieces: Sequence[np.ndarray], sample_format: str, channels: int) -> np.ndarray:
    samples = np.concatenate(pieces, axis=1)
    if not sample_format.endswith("p"):  # packed (1, samples * channels) -> (channels, samples)
        samples = samples.reshape(-1, channels).T
    samples = samples.astype(np.float32)
    if sample_format.startswith("s16"):
        samples /= 32768.0
    elif sample_format.startswith("s32"):
        samples /= 2147483648.0
    return samples.mean(axis=0)


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: int = 25) -> None:
    """Writes frames as a looping GIF (via Pillow)."""
    from PIL import Image

    frames = _check_frames(frames)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        os.fspath(path),
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
    )
