"""Evaluation of a lip generator beside the static baseline and the ground truth (paper
Sec. 5.2).

Every window of a split is scored in three rows:
  model         the generated clip;
  static        the identity image repeated 16 times: a model that does not beat it on LMD
                has learned no lip motion (docs/design.md, "Metrics");
  ground_truth  the real clip: the ceiling of the no-reference metrics (CPBD, LSE-D, LSE-C);
                the metrics against the real clip (LMD, PSNR, SSIM) are left out of it, as
                they are trivially perfect there.
Metrics: LMD between lip landmarks of the real and the scored clip (from a landmark model
on the crops, or on real corpora dlib on the crops pasted back into their frames,
lipjax.eval.real_lmd); with the landmark model, the correlation of the two clips' mouth
openings over time (motion alone: 0 for the static row); PSNR and colour SSIM against
the real clip (lipjax.eval.metrics, computed on the device by lipjax.eval.device_metrics);
CPBD sharpness; and, given a sync expert (lipjax.eval.lip_sync.SyncScorer), LSE-D, LSE-C
and the audio-visual offset of the clip against the window's audio.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from lipjax.eval import device_metrics, landmark_regressor, metrics

ROWS = ("model", "static", "ground_truth")
# Metrics of a clip against the real one (not reported for the ground truth itself).
REFERENCE_METRICS = ("lmd", "psnr", "ssim", "psnr_paper", "ssim_paper", "opening_corr")
SYNC_METRICS = ("lse_d", "lse_c", "sync_offset")
ID_KEYS = ("utterance_index", "start_frame", "speaker_id")

to_uint8 = metrics.to_uint8  # [-1, 1] floats -> uint8 frames


@dataclasses.dataclass
class EvalResult:
    """Mean metrics per row, a few clips to look at, and every clip's own metrics.

    `per_clip` holds arrays (num_clips,): the ids (utterance_index, start_frame,
    speaker_id) and "<row>_<metric>" for each row and metric computed.
    """

    model: dict[str, float]
    static: dict[str, float]
    num_clips: int
    samples: dict[str, np.ndarray]  # real / generated / identity (uint8) and ids
    ground_truth: dict[str, float] = dataclasses.field(default_factory=dict)
    per_clip: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def rows(self) -> dict[str, dict[str, float]]:
        return {"model": self.model, "static": self.static, "ground_truth": self.ground_truth}

    def scalars(self) -> dict[str, float]:
        """Flat scalars: model metrics by name, then static_* and gt_*, and lmd_vs_static."""
        out = dict(self.model)
        out.update({f"static_{k}": v for k, v in self.static.items()})
        out.update({f"gt_{k}": v for k, v in self.ground_truth.items()})
        if self.static.get("lmd"):
            out["lmd_vs_static"] = self.model["lmd"] / self.static["lmd"]
        return out


class LandmarkScorer:
    """Lip landmarks of generated and real clips: the shipped regressor for synthetic data."""

    def __init__(self, variables: Any | None = None):
        self.variables = landmark_regressor.load_regressor() if variables is None else variables

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """(B, T, 64, 64, 3) float in [-1, 1] -> (B, T, 20, 2) crop pixels."""
        return landmark_regressor.predict_landmarks(self.variables, np.asarray(clips, np.float32))


def _padded(frames: np.ndarray, rows: int) -> np.ndarray:
    """`frames` with clips of zeros appended up to `rows` clips."""
    if len(frames) >= rows:
        return frames
    padding = np.zeros((rows - len(frames), *frames.shape[1:]), frames.dtype)
    return np.concatenate([frames, padding])


def _reference_metrics(
    real_u8, clip_u8, real_landmarks, clip_landmarks, pad_to: int = 0
) -> dict[str, np.ndarray]:
    """Per-clip LMD and mouth-opening correlation (unless the landmarks are None), PSNR (each
    frame capped at 100 dB) and colour SSIM (11x11 Gaussian window), arrays (B,); and both
    as the paper's authors measured them (grey frames, 7x7 uniform SSIM window: *_paper), so
    that numbers compare with the paper's tables.

    PSNR and SSIM run on the device (device_metrics.clip_metrics, the values of
    metrics.psnr_per_frame and friends to float32 precision). The clips are padded with
    zeros to `pad_to` clips first, so that every batch of the split, the last one with
    padding rows included, runs the same compiled program."""
    num_clips = len(clip_u8)
    rows = max(pad_to, num_clips)
    image = device_metrics.clip_metrics(_padded(real_u8, rows), _padded(clip_u8, rows))
    values = {
        name: np.asarray(image[name], np.float64)[:num_clips]
        for name in device_metrics.CLIP_METRICS
    }
    if real_landmarks is not None:
        values["lmd"] = np.asarray(metrics.landmark_distance(real_landmarks, clip_landmarks))
        values["opening_corr"] = np.asarray(
            metrics.opening_correlation(real_landmarks, clip_landmarks)
        )
    return values


def _sync_metrics(sync, clips: np.ndarray, audio: np.ndarray, start: int) -> dict:
    scores = sync(clips, audio, start)
    return {"lse_d": scores["lse_d"], "lse_c": scores["lse_c"], "sync_offset": scores["offset"]}


def evaluate(
    generate: Callable[[dict], np.ndarray],
    batches: Iterable[tuple[dict, np.ndarray]],
    landmarks: LandmarkScorer | None,
    num_samples: int = 4,
    max_batches: int = 0,
    *,
    sharpness: bool = True,
    sync: Callable[[np.ndarray, np.ndarray, int], dict] | None = None,
    sync_audio: Callable[[dict, np.ndarray], tuple[np.ndarray, int]] | None = None,
    frame_lmd: Callable[[dict, np.ndarray, dict[str, np.ndarray]], dict] | None = None,
) -> EvalResult:
    """Runs `generate(batch) -> (B, 16, 64, 64, 3)` over (batch, mask) pairs and scores the
    model, static and ground-truth rows.

    LMD compares landmarks predicted on the real clip with those predicted on the scored
    one (both from the same landmark model, as the paper runs dlib on both). `sharpness`
    adds CPBD (about 2 ms a frame); `sync`, e.g. a lipjax.eval.lip_sync.SyncScorer, adds
    LSE-D, LSE-C and the offset: `sync(clips, log_mel, audio_start)` scores the clips
    against the batch's audio windows (audio_start 0), or against what
    `sync_audio(batch, mask)` returns, e.g. the window's audio with context around it
    as (log_mel of the valid rows, the clip frame where it starts).

    `frame_lmd(batch, valid, {"model": clips, "static": clips})`, e.g. a
    lipjax.eval.real_lmd.RealLmdScorer, gives the per-clip LMD of each row instead of
    `landmarks` (which may then be None; with neither, no LMD). Its uint8 clips are the
    valid rows; a clip it cannot score is NaN, and row means leave NaN clips out.
    """
    per_clip: dict[str, list[np.ndarray]] = {}
    samples: dict[str, list] = {
        "real": [],
        "generated": [],
        "identity": [],
        "utterance_index": [],
        "start_frame": [],
    }

    def record(name: str, values) -> None:
        per_clip.setdefault(name, []).append(np.asarray(values, np.float64).reshape(-1))

    for index, (batch, mask) in enumerate(batches):
        if max_batches and index >= max_batches:
            break
        valid = np.asarray(mask, bool)
        # Before the skip: with several processes `generate` is a collective that every
        # process runs for every batch, even one of padding rows only.
        generated = generate(batch)
        if not valid.any():
            continue
        real = np.asarray(batch["video"])[valid]
        fake = np.asarray(generated)[valid]
        identity = np.asarray(batch["identity"])[valid]
        static = np.repeat(identity[:, None], real.shape[1], axis=1)
        real_u8, fake_u8, static_u8 = to_uint8(real), to_uint8(fake), to_uint8(static)
        for key in ID_KEYS:
            record(key, np.asarray(batch.get(key, np.full(len(valid), -1)))[valid])

        crop_lmd = landmarks is not None and frame_lmd is None
        real_landmarks = landmarks(real) if crop_lmd else None
        for row, clip, clip_u8 in (("model", fake, fake_u8), ("static", static, static_u8)):
            clip_landmarks = landmarks(clip) if crop_lmd else None
            values = _reference_metrics(
                real_u8, clip_u8, real_landmarks, clip_landmarks, pad_to=len(valid)
            )
            for name, value in values.items():
                record(f"{row}_{name}", value)
        if frame_lmd is not None:
            pasted = frame_lmd(batch, valid, {"model": fake_u8, "static": static_u8})
            for row, value in pasted.items():
                record(f"{row}_lmd", value)
        if sharpness:
            record("model_cpbd", metrics.cpbd_per_frame(fake_u8).mean(axis=1))
            record("static_cpbd", metrics.cpbd_per_frame(static_u8[:, 0]))  # one frame, repeated
            record("ground_truth_cpbd", metrics.cpbd_per_frame(real_u8).mean(axis=1))
        if sync is not None:
            audio, start = (np.asarray(batch["audio"])[valid], 0)
            if sync_audio is not None:
                audio, start = sync_audio(batch, valid)
            for row, clip in (("model", fake), ("static", static), ("ground_truth", real)):
                for name, value in _sync_metrics(sync, clip, audio, start).items():
                    record(f"{row}_{name}", value)

        if len(samples["real"]) < num_samples:
            take = num_samples - len(samples["real"])
            samples["real"].extend(real_u8[:take])
            samples["generated"].extend(fake_u8[:take])
            samples["identity"].extend(to_uint8(identity[:take]))
            for key in ("utterance_index", "start_frame"):
                ids = np.asarray(batch.get(key, np.full(len(valid), -1)))[valid]
                samples[key].extend(ids[:take])
    columns = _gather_processes({name: np.concatenate(parts) for name, parts in per_clip.items()})
    if not columns:
        raise ValueError("evaluation: the split produced no 16-frame windows")
    for key in ID_KEYS:
        columns[key] = columns[key].astype(np.int64)
    means = {row: {} for row in ROWS}
    for name, values in columns.items():
        row = next((r for r in ROWS if name.startswith(f"{r}_")), None)
        if row is not None:
            finite = values[np.isfinite(values)]  # NaN: a clip a metric could not score
            means[row][name[len(row) + 1 :]] = float(np.mean(finite)) if finite.size else np.nan
    return EvalResult(
        model=means["model"],
        static=means["static"],
        ground_truth=means["ground_truth"],
        num_clips=len(columns["utterance_index"]),
        samples={k: np.stack(v) for k, v in samples.items() if v},
        per_clip=columns,
    )


def _gather_processes(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every process's per-clip columns, concatenated in process order (a one-process
    run's order of the split's windows); unchanged on one process."""
    import jax

    if jax.process_count() == 1:
        return columns
    from lipjax import multihost

    names = sorted(columns)
    # Every process must score the same metrics (one row each: count and a hash of names).
    signature = np.array([[len(names), zlib.crc32("\n".join(names).encode())]], np.int64)
    if len(np.unique(multihost.gather_rows(signature), axis=0)) != 1:
        raise ValueError(
            "evaluation: the processes scored different metrics (or one scored no window)"
        )
    local = np.stack([columns[name] for name in names], axis=1) if names else np.zeros((0, 0))
    table = multihost.gather_rows(local.astype(np.float64))
    return {name: table[:, column] for column, name in enumerate(names)}


def sample_grid(samples: dict[str, np.ndarray]) -> np.ndarray:
    """(T, rows * 64, 3 * 64, 3) frames: each row is real | generated | identity."""
    real, generated, identity = samples["real"], samples["generated"], samples["identity"]
    identity_clip = np.repeat(identity[:, None], real.shape[1], axis=1)
    rows = np.concatenate([real, generated, identity_clip], axis=3)  # side by side
    return np.concatenate(list(rows), axis=1)  # stacked rows


def temporal_sensitivity(
    generator: Any, variables: Any, audio: Any, identity: Any, mels_per_frame: int = 4
) -> np.ndarray:
    """Where in time each generated frame listens: (T, T) with row t the share of
    |d E_t / d audio| falling on each video frame's audio, E_t = sum over the batch of frame
    t's squared difference from the identity image. Rows sum to 1 (a row of zeros when frame
    t does not depend on the audio). audio (B, mels_per_frame * T, 128, 1), identity (B, 64,
    64, 3); `generator.apply(variables, audio, identity, train=False)` gives (video, _)."""
    import jax
    import jax.numpy as jnp

    audio, identity = jnp.asarray(audio), jnp.asarray(identity)
    num_frames = audio.shape[1] // mels_per_frame

    def frame_energy(spectrogram, frame):
        video, _ = generator.apply(variables, spectrogram, identity, train=False)
        return jnp.sum((video[:, frame] - identity) ** 2)

    gradient = jax.jit(jax.grad(frame_energy))  # the frame traced: one compile for all
    rows = []
    for frame in range(num_frames):
        per_mel = np.abs(np.asarray(gradient(audio, jnp.int32(frame)))).sum(axis=(0, 2, 3))
        per_frame = per_mel[: num_frames * mels_per_frame].reshape(num_frames, -1).sum(axis=1)
        total = per_frame.sum()
        rows.append(per_frame / total if total > 0 else per_frame)
    return np.stack(rows)


def sensitivity_by_offset(matrix: np.ndarray, frames: Iterable[int]) -> dict[int, float]:
    """Mean share of `temporal_sensitivity` at each offset (audio frame - video frame), over
    the video `frames` given (middle frames see the whole receptive field)."""
    frames = list(frames)
    size = matrix.shape[0]
    return {
        offset: float(np.mean([matrix[t, t + offset] for t in frames if 0 <= t + offset < size]))
        for offset in range(-(size - 1), size)
        if any(0 <= t + offset < size for t in frames)
    }
