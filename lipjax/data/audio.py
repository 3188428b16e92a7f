"""Speech features: waveform -> log-mel spectrogram, the one audio path of lipjax.

The paper (Sec. 5.1) encodes 0.64 s of audio as a 64 x 128 log-mel "image": 128 mel
bands and exactly 4 mel frames per 25-fps video frame. We compute it with a single
continuous STFT whose hop is sample_rate / (4 * fps) = 441 samples at 44.1 kHz, so mel
frames 4t..4t+3 belong to video frame t. The authors' per-chunk variant (one STFT with
hop 512 per 1764-sample chunk) is kept as `mode="per_chunk"`.

Every function takes `xp`, the array namespace (`numpy` or `jax.numpy`), so the same code
computes features in the data pipeline and, jit-compiled, inside `generate()`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

SAMPLE_RATE = 44_100
VIDEO_FPS = 25
MELS_PER_VIDEO_FRAME = 4
SAMPLES_PER_VIDEO_FRAME = SAMPLE_RATE // VIDEO_FPS  # 1764
HOP_LENGTH = SAMPLES_PER_VIDEO_FRAME // MELS_PER_VIDEO_FRAME  # 441
N_FFT = 1024
N_MELS = 128
FMIN = 0.0
FMAX = 16_000.0
AMIN = 1e-10  # power floor before the log, as librosa.power_to_db
PER_CHUNK_HOP = 512  # the authors' hop, used per 1764-sample chunk
PER_CHUNK_TOP_DB = 80.0  # the authors' librosa.power_to_db default, applied per chunk
# Mean and standard deviation of every log-mel value (dB) of synthetic_lips/small train
# (384 utterances, 12,023,296 values; range -100.0 .. 26.3 dB), measured once: mean
# -38.5514, std 16.1571. Runs trained before per-corpus statistics (their config has no
# model.log_mel_mean) and the lip-sync expert normalise with these; every other run with
# the statistics of its training corpus, computed when the corpus is built
# (`LogMelStats`, `LOG_MEL_STATS_METADATA_KEY`).
LOG_MEL_MEAN = -38.55
LOG_MEL_STD = 16.16
# Where a built dataset keeps its train split's statistics: dataset_info's metadata.json.
LOG_MEL_STATS_METADATA_KEY = "log_mel_stats"

MODES = ("continuous", "per_chunk")
MAX_LOOKAHEAD_FRAMES = 8  # of config.model.audio_lookahead_frames: half a 16-frame window


@dataclasses.dataclass(frozen=True)
class LogMelStats:
    """Mean and standard deviation (dB) of a corpus's log-mel values; the model's audio
    input is (dB - mean) / std."""

    mean: float
    std: float

    def __post_init__(self):
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(
                f"log-mel statistics: expected a finite mean and a positive std (dB), "
                f"got mean={self.mean!r}, std={self.std!r}"
            )

    def normalize(self, log_mel_db, xp=np):
        """dB -> the model's audio input, float32 (same shape)."""
        return (xp.asarray(log_mel_db, xp.float32) - np.float32(self.mean)) / np.float32(self.std)

    def renormalize(self, normalized, target: LogMelStats):
        """Audio normalised with these statistics -> normalised with `target`'s (the same
        array when they are equal)."""
        if target == self:
            return normalized
        scale = np.float32(self.std / target.std)
        shift = np.float32((self.mean - target.mean) / target.std)
        return normalized * scale + shift


# The statistics of every model whose config predates per-corpus statistics, and of the
# lip-sync expert (lipjax.eval.lip_sync), which was trained with them.
FIXED_LOG_MEL_STATS = LogMelStats(LOG_MEL_MEAN, LOG_MEL_STD)


def model_log_mel_stats(model_config: Any) -> LogMelStats:
    """The normalisation a model was trained with: its config's `log_mel_mean` and
    `log_mel_std` (set from the training corpus when training starts), or
    FIXED_LOG_MEL_STATS where they are unset (configs and weights saved before them)."""
    mean, std = model_config.get("log_mel_mean"), model_config.get("log_mel_std")
    if mean is None or std is None:
        return FIXED_LOG_MEL_STATS
    return LogMelStats(float(mean), float(std))


class LogMelStatsAccumulator:
    """Mean and standard deviation of every value of the log-mels given to `add`
    (float64 sums: exact enough for tens of millions of values in dB)."""

    def __init__(self):
        self.count, self.total, self.total_of_squares = 0, 0.0, 0.0

    def add(self, log_mel_db: np.ndarray) -> None:
        values = np.asarray(log_mel_db, np.float64)
        self.count += values.size
        self.total += float(values.sum())
        self.total_of_squares += float(np.square(values).sum())

    def result(self) -> LogMelStats:
        if not self.count:
            raise ValueError("log-mel statistics: no log-mel value was given")
        mean = self.total / self.count
        variance = max(self.total_of_squares / self.count - mean * mean, 0.0)
        return LogMelStats(mean, math.sqrt(variance))

    def metadata(self) -> dict[str, float | int]:
        """What a build stores under LOG_MEL_STATS_METADATA_KEY."""
        stats = self.result()
        return {"mean": stats.mean, "std": stats.std, "count": self.count, "split": "train"}


def num_video_frames(num_samples: int) -> int:
    """Number of 25-fps video frames spanned by `num_samples` audio samples at 44.1 kHz."""
    return math.ceil(num_samples / SAMPLES_PER_VIDEO_FRAME)


def check_lookahead(frames: Any) -> int:
    """`config.model.audio_lookahead_frames`, checked: an integer 0..MAX_LOOKAHEAD_FRAMES."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)):
        frames_ok = False
    else:
        frames_ok = 0 <= frames <= MAX_LOOKAHEAD_FRAMES
    if not frames_ok:
        raise ValueError(
            f"model.audio_lookahead_frames: expected an integer 0..{MAX_LOOKAHEAD_FRAMES} "
            f"(video frames), got {frames!r}"
        )
    return int(frames)


def log_mel_window(log_mel: np.ndarray, start_frame: int, num_frames: int) -> np.ndarray:
    """The log-mel rows (4 num_frames, ...) of video frames [start_frame, start_frame +
    num_frames) of an utterance's log-mel (4 T, ...), padded beyond its ends with its
    quietest mel frame (lowest mean), the nearest thing to silence it holds."""
    log_mel = np.asarray(log_mel)
    first = MELS_PER_VIDEO_FRAME * start_frame
    stop = first + MELS_PER_VIDEO_FRAME * num_frames
    if first >= 0 and stop <= len(log_mel):
        return log_mel[first:stop]
    quietest = log_mel[np.argmin(log_mel.reshape(len(log_mel), -1).mean(axis=-1))]
    out = np.repeat(quietest[None], stop - first, axis=0)
    source = slice(max(first, 0), min(stop, len(log_mel)))
    if source.start < source.stop:
        out[source.start - first : source.stop - first] = log_mel[source]
    return out


def pad_to_video_frames(waveform: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """Zero-pads (or trims) a waveform to exactly `num_frames` video frames of samples."""
    if num_frames is None:
        num_frames = num_video_frames(len(waveform))
    target = num_frames * SAMPLES_PER_VIDEO_FRAME
    if len(waveform) >= target:
        return waveform[:target]
    return np.pad(waveform, (0, target - len(waveform)))


def check_waveform(waveform: Any, sample_rate: int, name: str = "waveform") -> np.ndarray:
    """Validates a mono waveform at 44.1 kHz and returns it as float32 NumPy.

    Raises ValueError naming `name` when it is not 1-D, is empty, holds NaN or inf, or
    has another sample rate (use `to_model_rate` to convert).
    """
    array = np.asarray(waveform)
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"{name}: sample rate {sample_rate} Hz, expected {SAMPLE_RATE} Hz; "
            "convert it with lipjax.data.audio.to_model_rate(waveform, sample_rate)"
        )
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a mono 1-D waveform, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: the waveform is empty")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name}: expected numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: the waveform contains NaN or inf samples")
    return array.astype(np.float32, copy=False)


def to_model_rate(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    """Converts audio of any rate, mono or (samples, channels) / (channels, samples), to
    float32 mono at 44.1 kHz (polyphase resampling)."""
    import scipy.signal

    array = np.asarray(waveform, dtype=np.float64)
    if array.ndim == 2:
        channel_axis = 0 if array.shape[0] < array.shape[1] else 1
        array = array.mean(axis=channel_axis)
    if array.ndim != 1:
        raise ValueError(f"waveform: expected mono or stereo audio, got shape {array.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate: expected a positive rate in Hz, got {sample_rate}")
    if sample_rate != SAMPLE_RATE:
        divisor = math.gcd(SAMPLE_RATE, int(sample_rate))
        array = scipy.signal.resample_poly(array, SAMPLE_RATE // divisor, sample_rate // divisor)
    return array.astype(np.float32)


@functools.cache
def mel_filterbank() -> np.ndarray:
    """The (N_MELS, N_FFT // 2 + 1) Slaney mel filterbank (librosa's default)."""
    import librosa

    return librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX
    ).astype(np.float32)


@functools.cache
def _hann_window() -> np.ndarray:
    # Periodic Hann, as scipy.signal.get_window("hann", N_FFT, fftbins=True) used by librosa.
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)


def _frame_starts(num_frames: int, hop: int) -> np.ndarray:
    return np.arange(num_frames)[:, None] * hop + np.arange(N_FFT)[None, :]


def _power_spectrum(frames, xp):
    spectrum = xp.fft.rfft(frames * _hann_window(), axis=-1)
    return spectrum.real**2 + spectrum.imag**2


def _log_mel_from_power(power, xp):
    mel = power @ mel_filterbank().T
    return (10.0 * xp.log10(xp.maximum(mel, AMIN))).astype(xp.float32)


def log_mel(
    waveform,
    sample_rate: int = SAMPLE_RATE,
    *,
    mode: str = "continuous",
    xp=np,
):
    """Log-mel power spectrogram in dB, shape (4 * T, 128) for T video frames.

    Args:
      waveform: mono samples at 44.1 kHz; padded with zeros to whole video frames.
      sample_rate: must be 44,100 (see `to_model_rate`).
      mode: "continuous" (one STFT, hop 441, centred frames like librosa's
        `center=True`) or "per_chunk" (the authors' code: librosa's centred STFT with hop
        512 over each 1764-sample chunk, 4 frames each, the chunk padded by reflection as
        their librosa did, and each chunk's dB clipped at its maximum minus 80).
      xp: `numpy` or `jax.numpy`. With `jax.numpy` the waveform must be a concrete-length
        array and is not validated for NaN (that would need a host sync).

    Returns:
      float32 dB values, 10 * log10(max(mel power, 1e-10)); in "continuous" mode with no
      top-dB clipping, so that a window's values do not depend on the loudest part of its
      utterance.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if xp is np:
        waveform = check_waveform(waveform, sample_rate)
    elif sample_rate != SAMPLE_RATE:
        raise ValueError(f"sample_rate: expected {SAMPLE_RATE} Hz, got {sample_rate}")
    num_frames = num_video_frames(waveform.shape[0])
    total = num_frames * SAMPLES_PER_VIDEO_FRAME
    waveform = xp.pad(waveform.astype(xp.float32), (0, total - waveform.shape[0]))
    half = N_FFT // 2
    if mode == "continuous":
        padded = xp.pad(waveform, (half, half))
        frames = padded[_frame_starts(MELS_PER_VIDEO_FRAME * num_frames, HOP_LENGTH)]
    else:
        chunks = waveform.reshape(num_frames, SAMPLES_PER_VIDEO_FRAME)
        padded = xp.pad(chunks, ((0, 0), (half, half)), mode="reflect")
        frames = padded[:, _frame_starts(MELS_PER_VIDEO_FRAME, PER_CHUNK_HOP)]
        frames = frames.reshape(MELS_PER_VIDEO_FRAME * num_frames, N_FFT)
        db = _log_mel_from_power(_power_spectrum(frames, xp), xp)
        per_chunk = db.reshape(num_frames, MELS_PER_VIDEO_FRAME * N_MELS)
        floor = per_chunk.max(axis=1, keepdims=True) - PER_CHUNK_TOP_DB
        return xp.maximum(per_chunk, floor).reshape(db.shape)
    return _log_mel_from_power(_power_spectrum(frames, xp), xp)


def frame_rms(waveform: np.ndarray) -> np.ndarray:
    """RMS amplitude of each video frame's 1764 samples (the speech envelope), shape (T,)."""
    chunks = pad_to_video_frames(np.asarray(waveform, np.float64)).reshape(
        -1, SAMPLES_PER_VIDEO_FRAME
    )
    return np.sqrt(np.mean(chunks**2, axis=1))


def frame_energy_db(waveform: np.ndarray) -> np.ndarray:
    """Mean power in dB of each video frame's 1764 samples, shape (T,)."""
    return 10.0 * np.log10(np.maximum(frame_rms(waveform) ** 2, AMIN))
