"""Evaluation of a lip generator beside the static baseline (paper Sec. 5.2).

For every window of a split: PSNR and SSIM of the generated clip against the real one, and
LMD between lip landmarks of the real and the generated clip. The static baseline repeats
the identity image 16 times; a model that does not beat it on LMD has learned no lip
motion (SPEC "Metrics").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from lipjax import landmark_regressor, metrics


def to_uint8(video: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> uint8 frames."""
    return np.clip(np.rint((np.asarray(video, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


@dataclasses.dataclass
class EvalResult:
    """Mean metrics of the model and the static baseline, and a few clips to look at."""

    model: dict[str, float]
    static: dict[str, float]
    num_clips: int
    samples: dict[str, np.ndarray]  # real / generated / identity (uint8) and ids

    def scalars(self) -> dict[str, float]:
        out = {f"{k}": v for k, v in self.model.items()}
        out.update({f"static_{k}": v for k, v in self.static.items()})
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


def evaluate(
    generate: Callable[[dict], np.ndarray],
    batches: Iterable[tuple[dict, np.ndarray]],
    landmarks: LandmarkScorer,
    num_samples: int = 4,
    max_batches: int = 0,
) -> EvalResult:
    """Runs `generate(batch) -> (B, 16, 64, 64, 3)` over (batch, mask) pairs.

    LMD compares landmarks predicted on the real clip with those predicted on the generated
    one (both from the same landmark model, as the paper runs dlib on both).
    """
    sums = {"model": {}, "static": {}}
    count = 0
    samples: dict[str, list] = {
        "real": [],
        "generated": [],
        "identity": [],
        "utterance_index": [],
        "start_frame": [],
    }
    for index, (batch, mask) in enumerate(batches):
        if max_batches and index >= max_batches:
            break
        valid = np.asarray(mask, bool)
        real = np.asarray(batch["video"])[valid]
        fake = np.asarray(generate(batch))[valid]
        identity = np.asarray(batch["identity"])[valid]
        static = np.repeat(identity[:, None], real.shape[1], axis=1)
        real_u8, fake_u8, static_u8 = to_uint8(real), to_uint8(fake), to_uint8(static)
        real_landmarks = landmarks(real)
        for name, clip, clip_u8 in (("model", fake, fake_u8), ("static", static, static_u8)):
            clip_landmarks = landmarks(clip)
            values = {
                "lmd": metrics.landmark_distance(real_landmarks, clip_landmarks),
                "psnr": np.array(
                    [metrics.psnr(r, f) for r, f in zip(real_u8, clip_u8, strict=False)]
                ),
                "ssim": np.array(
                    [metrics.ssim(r, f) for r, f in zip(real_u8, clip_u8, strict=False)]
                ),
            }
            for key, per_clip in values.items():
                sums[name][key] = sums[name].get(key, 0.0) + float(np.sum(per_clip))
        count += len(real)
        if len(samples["real"]) < num_samples:
            take = num_samples - len(samples["real"])
            samples["real"].extend(real_u8[:take])
            samples["generated"].extend(fake_u8[:take])
            samples["identity"].extend(to_uint8(identity[:take]))
            for key in ("utterance_index", "start_frame"):
                ids = np.asarray(batch.get(key, np.full(len(valid), -1)))[valid]
                samples[key].extend(ids[:take])
    if count == 0:
        raise ValueError("evaluation: the split produced no 16-frame windows")
    return EvalResult(
        model={k: v / count for k, v in sums["model"].items()},
        static={k: v / count for k, v in sums["static"].items()},
        num_clips=count,
        samples={k: np.stack(v) for k, v in samples.items() if v},
    )


def sample_grid(samples: dict[str, np.ndarray]) -> np.ndarray:
    """(T, rows * 64, 3 * 64, 3) frames: each row is real | generated | identity."""
    real, generated, identity = samples["real"], samples["generated"], samples["identity"]
    identity_clip = np.repeat(identity[:, None], real.shape[1], axis=1)
    rows = np.concatenate([real, generated, identity_clip], axis=3)  # side by side
    return np.concatenate(list(rows), axis=1)  # stacked rows
