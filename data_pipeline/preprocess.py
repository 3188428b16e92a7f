"""From a corpus's files to one example: decode, find the mouth, crop, compute log-mel.

One utterance = a video file (25 fps), its audio (a .wav beside it or the video's own
track) and optional transcript files. `preprocess` returns the example every lipjax
corpus stores (`lipjax.data.features`) or raises `SkipUtterance` with a reason kind and
a message naming the file: corrupt or empty files, a missing audio track, another frame
rate, audio and video of different lengths, frames without a face, a bad landmark file.
The builders count and list those in a build report (`BuildReport`), never crop a guess.

Decoding uses PyAV (FFmpeg). Each frame is read both as RGB (for the crop) and as its luma
plane (for dlib), so no colour conversion runs in Python. The crop is the rule
(docs/design.md, "Lip crops") of `lipjax.data.crop`, computed on a region around the mouth
rather than the whole frame (the same pixels, several times faster on 640 x 480 video).
Each crop's box is stored with it (`crop_box`, with the video's path as `source_video`), so
that evaluation can paste generated crops back into their frames (`lipjax.eval.real_lmd`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import pathlib
import re

import numpy as np

from lipjax.data import audio, crop, features, landmarks

VIDEO_FPS = 25.0
VIDEO_SUFFIXES = (".mpg", ".mpeg", ".mp4", ".mov", ".avi", ".mkv")

# Reason kinds of a skipped utterance (the build report counts them).
SKIP_REASONS = (
    "missing_file",
    "corrupt_video",
    "empty_video",
    "frame_rate",
    "missing_audio",
    "bad_audio",
    "length_mismatch",
    "no_face",
    "bad_landmarks",
    "too_short",
)


class SkipUtterance(Exception):  # noqa: N818 (a control-flow signal, not an error to raise up)
    """An utterance that cannot become an example; `reason` is one of SKIP_REASONS."""

    def __init__(self, reason: str, message: str):
        assert reason in SKIP_REASONS, reason
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Utterance:
    """The files of one utterance, as a corpus listing finds them.

    `key` is unique within a split (GRID ids repeat across speakers, so it holds both).
    `audio` is None when the audio is the video's own track. `transcript` is a GRID
    .align file or an LRW/LDC .txt file (`transcript_format` "grid_align", "lrw", "text").
    `source` is the video's path relative to the corpus's manual_dir (stored as
    `source_video`; the builders set it, default the file name).
    """

    key: str
    speaker: str
    utterance: str
    video: str
    audio: str | None = None
    transcript: str | None = None
    transcript_format: str = "text"
    source: str = ""


@dataclasses.dataclass(frozen=True)
class PreprocessOptions:
    """How utterances become examples (fields of every real corpus's builder config)."""

    landmarks: str = "auto"  # "auto" (sidecar if present, else dlib), "dlib", "sidecar"
    detect_every: int = 10  # dlib: frames between face detections (tracking between)
    smoothing_window: int = 5  # moving average of the crop box over frames (1 = none)
    max_length_difference: float = 0.2  # seconds audio and video may differ before a skip
    min_frames: int = 1  # shorter videos are skipped (the input pipeline needs 16)
    video_threads: int = 1  # FFmpeg decoding threads per process (builders use processes)

    def validate(self) -> None:
        """Raises ValueError naming the first setting that cannot work."""
        if self.landmarks not in landmarks.SOURCES:
            raise ValueError(
                f"landmarks: expected one of {landmarks.SOURCES}, got {self.landmarks!r}"
            )
        for name in ("detect_every", "smoothing_window", "min_frames", "video_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not self.max_length_difference >= 0:
            raise ValueError(
                f"max_length_difference: expected >= 0 s, got {self.max_length_difference}"
            )


# ---------------------------------------------------------------- decoding


def decode_video(
    path: str | pathlib.Path, threads: int = 1
) -> tuple[np.ndarray, np.ndarray, float]:
    """RGB frames (T, H, W, 3) uint8, their luma (T, H, W) uint8 and the frame rate.

    Raises SkipUtterance for a missing, corrupt or empty file.
    """
    import av

    path = pathlib.Path(path)
    if not path.is_file():
        raise SkipUtterance("missing_file", f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise SkipUtterance("empty_video", f"{path}: the file is empty")
    rgb, gray = [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SkipUtterance("corrupt_video", f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_count = threads
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else float("nan")
            for frame in container.decode(stream):
                rgb.append(frame.to_ndarray(format="rgb24"))
                gray.append(frame.to_ndarray(format="gray"))
    except av.FFmpegError as error:
        raise SkipUtterance("corrupt_video", f"{path}: cannot decode ({error})") from None
    if not rgb:
        raise SkipUtterance("empty_video", f"{path}: the video stream has no frames")
    return np.stack(rgb), np.stack(gray), fps


def read_audio(utterance: Utterance) -> np.ndarray:
    """The utterance's audio as float32 mono at 44.1 kHz (resampled if needed).

    Raises SkipUtterance when it is missing, unreadable, empty or not finite.
    """
    if utterance.audio is not None:
        samples, rate = _read_wav(pathlib.Path(utterance.audio))
        name = utterance.audio
    else:
        samples, rate = _read_video_audio(pathlib.Path(utterance.video))
        name = f"{utterance.video} (audio track)"
    if samples.size == 0:
        raise SkipUtterance("missing_audio", f"{name}: the audio is empty")
    try:
        return audio.check_waveform(audio.to_model_rate(samples, rate), audio.SAMPLE_RATE, name)
    except ValueError as error:
        raise SkipUtterance("bad_audio", str(error)) from None


def _read_wav(path: pathlib.Path) -> tuple[np.ndarray, int]:
    import scipy.io.wavfile

    if not path.is_file():
        raise SkipUtterance("missing_audio", f"{path}: no such audio file")
    try:
        with path.open("rb") as file:
            rate, data = scipy.io.wavfile.read(file)
    except (ValueError, EOFError) as error:
        raise SkipUtterance("bad_audio", f"{path}: not a readable .wav ({error})") from None
    scale = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}
    if data.dtype == np.uint8:
        samples = (data.astype(np.float32) - 128.0) / 128.0
    else:
        samples = data.astype(np.float32) / np.float32(scale.get(data.dtype, 1.0))
    return samples, int(rate)


def _read_video_audio(path: pathlib.Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SkipUtterance(
                    "missing_audio", f"{path}: no audio track and no .wav beside it"
                )
            stream = container.streams.audio[0]
            rate = stream.rate
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            pieces = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.FFmpegError as error:
        raise SkipUtterance("bad_audio", f"{path}: cannot decode the audio ({error})") from None
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return samples, int(rate)


# ---------------------------------------------------------------- transcripts


ALIGN_UNITS_PER_SECOND = 25_000  # GRID .align: 1/1000 of a 25-fps frame
_SILENCE = {"sil", "sp"}


def read_transcript(utterance: Utterance, duration: float) -> tuple[str, list]:
    """(text, words as (word, start s, end s)) from the utterance's transcript, if any."""
    if utterance.transcript is None:
        return "", []
    path = pathlib.Path(utterance.transcript)
    lines = path.read_text(errors="replace").splitlines()
    if utterance.transcript_format == "grid_align":
        words = []
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[2] not in _SILENCE:
                start, end = (int(v) / ALIGN_UNITS_PER_SECOND for v in parts[:2])
                words.append((parts[2], start, end))
        return " ".join(w[0] for w in words), words
    if utterance.transcript_format == "lrw":
        # LRW: "Text:  ABOUT", ..., "Duration: 0.53 seconds" (the word, centred in the clip).
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        word = fields.get("Text", "").strip()
        match = re.match(r"\s*([\d.]+)", fields.get("Duration", ""))
        if word and match:
            half = float(match.group(1)) / 2.0
            return word, [(word, max(duration / 2 - half, 0.0), min(duration / 2 + half, duration))]
        return word, []
    return " ".join(" ".join(lines).split()), []


# ---------------------------------------------------------------- cropping


def crop_video(
    frames: np.ndarray, mouth_landmarks: np.ndarray, smoothing_window: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """`lipjax.data.crop.crop_video` computed on a region around each box: the same crops
    (T, 64, 64, 3) uint8 and crop-pixel landmarks (T, 20, 2), without filtering the
    whole frame."""
    crops, crop_landmarks, _ = crop_video_and_boxes(frames, mouth_landmarks, smoothing_window)
    return crops, crop_landmarks


def crop_video_and_boxes(
    frames: np.ndarray, mouth_landmarks: np.ndarray, smoothing_window: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`crop_video`, and each crop's box (T, 3) float32 as (centre x, centre y, half-size
    r) in frame pixels: `lipjax.data.crop.crop_frame(frame, box[:2], box[2])` cuts the crop and
    `lipjax.data.crop.paste_frame` puts one back."""
    frames, centres, half_sizes = crop.video_crop_boxes(frames, mouth_landmarks, smoothing_window)
    crops = np.stack(
        [_crop_region(f, c, r) for f, c, r in zip(frames, centres, half_sizes, strict=True)]
    )
    crop_landmarks = crop.landmarks_to_crop(np.asarray(mouth_landmarks), centres, half_sizes)
    boxes = np.concatenate([centres, np.asarray(half_sizes)[:, None]], axis=1)
    return crops, crop_landmarks, boxes.astype(np.float32)


def _crop_region(frame: np.ndarray, centre: np.ndarray, half_size: float) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = 2.0 * half_size / crop.CROP_SIZE
    sigma = max(scale - 1.0, 0.0) / 2.0  # crop_frame's anti-aliasing filter
    # scipy's Gaussian reaches int(4 sigma + 0.5) pixels; bilinear sampling 1 more.
    margin = int(4.0 * sigma + 0.5) + 2
    x0 = math.floor(centre[0] - half_size) - margin
    y0 = math.floor(centre[1] - half_size) - margin
    x1 = math.ceil(centre[0] + half_size) + margin
    y1 = math.ceil(centre[1] + half_size) + margin
    # Clipped at the frame's edges, where edge repetition gives what the full frame gives.
    x0, y0 = max(0, min(x0, width - margin)), max(0, min(y0, height - margin))
    x1, y1 = min(width, max(x1, margin)), min(height, max(y1, margin))
    region = frame[y0:y1, x0:x1]
    return crop.crop_frame(region, np.asarray(centre) - (x0, y0), half_size)


# ---------------------------------------------------------------- one utterance


def preprocess(
    utterance: Utterance,
    options: PreprocessOptions,
    source: landmarks.LandmarkSource | None = None,
) -> dict:
    """The example of one utterance (features of `lipjax.data.features`).

    Raises SkipUtterance with a reason kind and a message naming the file.
    """
    source = source or landmarks.make_source(options.landmarks, options.detect_every)
    video_path = pathlib.Path(utterance.video)
    frames, gray, fps = decode_video(video_path, options.video_threads)
    if not abs(fps - VIDEO_FPS) < 0.01:
        raise SkipUtterance("frame_rate", f"{video_path}: {fps:g} frames/s, expected {VIDEO_FPS:g}")
    num_frames = len(frames)
    if num_frames < options.min_frames:
        raise SkipUtterance(
            "too_short", f"{video_path}: {num_frames} frames, fewer than {options.min_frames}"
        )
    waveform = read_audio(utterance)
    difference = len(waveform) / audio.SAMPLE_RATE - num_frames / VIDEO_FPS
    if abs(difference) > options.max_length_difference:
        raise SkipUtterance(
            "length_mismatch",
            f"{utterance.audio or video_path}: audio {len(waveform) / audio.SAMPLE_RATE:.3f} s "
            f"for {num_frames} frames ({num_frames / VIDEO_FPS:.3f} s) of video",
        )
    waveform = audio.pad_to_video_frames(waveform, num_frames)
    try:
        mouth = source(frames, gray, video_path)
    except landmarks.NoFaceError as error:
        raise SkipUtterance("no_face", str(error)) from None
    except landmarks.LandmarkFileError as error:
        raise SkipUtterance("bad_landmarks", str(error)) from None
    crops, crop_landmarks, boxes = crop_video_and_boxes(frames, mouth, options.smoothing_window)
    text, words = read_transcript(utterance, num_frames / VIDEO_FPS)
    return {
        "frames": crops,
        "log_mel": audio.log_mel(waveform),
        "landmarks": crop_landmarks,
        "waveform": waveform,
        "speaker": utterance.speaker,
        "utterance": utterance.utterance,
        "text": text,
        "phonemes": features.events([], "phoneme"),
        "words": features.events(words, "word"),
        "av_delay_frames": features.UNKNOWN_DELAY,
        "crop_box": boxes,
        "source_video": utterance.source or video_path.name,
    }


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one utterance: its example, or why it was skipped."""

    utterance: Utterance
    example: dict | None
    reason: str = ""
    message: str = ""
    landmark_source: str = ""

    def record(self) -> dict:
        """One line of the build report."""
        return {
            "key": self.utterance.key,
            "video": self.utterance.video,
            "status": "ok" if self.example is not None else "skipped",
            "reason": self.reason,
            "message": self.message,
            "landmarks": self.landmark_source,
        }


def process(utterance: Utterance, options: PreprocessOptions) -> Outcome:
    """`preprocess` with skips caught: the unit of work of parallel and Beam builds."""
    source = landmarks.make_source(options.landmarks, options.detect_every)
    if isinstance(source, landmarks.AutoLandmarks):
        source = source.choose(pathlib.Path(utterance.video))
    try:
        example = preprocess(utterance, options, source)
    except SkipUtterance as skip:
        return Outcome(utterance, None, skip.reason, str(skip), source.name)
    return Outcome(utterance, example, landmark_source=source.name)


# ---------------------------------------------------------------- build report


REPORT_DIR = "build_report"


def report_path(data_dir: str | pathlib.Path, split: str) -> pathlib.Path:
    """`<data_dir>/build_report/<split>.jsonl`: one JSON line per utterance of the split."""
    return pathlib.Path(data_dir) / REPORT_DIR / f"{split}.jsonl"


def write_report(path: pathlib.Path, records: list[dict]) -> None:
    """Writes report lines (see `Outcome.record`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def summarize(records: list[dict]) -> dict:
    """Counts of a split's report: examples, skips by reason, landmark sources, skipped list."""
    skipped = [r for r in records if r["status"] == "skipped"]
    return {
        "utterances": len(records),
        "examples": len(records) - len(skipped),
        "skipped": len(skipped),
        "skipped_by_reason": dict(collections.Counter(r["reason"] for r in skipped)),
        "landmark_sources": dict(collections.Counter(r["landmarks"] for r in records)),
        "skipped_files": [(r["video"], r["message"]) for r in skipped],
    }


def read_report(data_dir: str | pathlib.Path) -> dict[str, dict]:
    """{split: summary} of a built dataset's report (`builder.data_dir`)."""
    report = {}
    for path in sorted((pathlib.Path(data_dir) / REPORT_DIR).glob("*.jsonl")):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        report[path.stem] = summarize([json.loads(line) for line in lines])
    return report
