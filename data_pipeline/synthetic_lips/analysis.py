"""Checks that the synthetic corpus behaves like speech: the Fig. 4 offset study, bilabial
closures, and how distinct the speakers look."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from data_pipeline.synthetic_lips import visemes
from lipjax.data import audio
from lipjax.eval import metrics

CLOSED_GAP_PIXELS = 0.5  # an inner-lip gap below this (crop pixels) counts as closed
mouth_opening = metrics.mouth_opening  # inner-lip gap per frame, in the landmarks' units


def offset_correlations(visual: np.ndarray, acoustic: np.ndarray, max_offset: int) -> np.ndarray:
    """Pearson correlation of visual[t] with acoustic[t + k] for k = 0..max_offset.

    A positive best k means the visual signal leads the acoustic one by k frames (the
    paper's Fig. 4 shifts the flow forward in time the same way). NaN where either side
    is constant.
    """
    visual, acoustic = np.asarray(visual, np.float64), np.asarray(acoustic, np.float64)
    if visual.shape != acoustic.shape or visual.ndim != 1:
        raise ValueError(
            f"visual, acoustic: expected two 1-D series of one length, got {visual.shape} "
            f"and {acoustic.shape}"
        )
    if len(visual) <= max_offset + 2:
        raise ValueError(f"series of {len(visual)} frames are too short for offset {max_offset}")
    out = np.full(max_offset + 1, np.nan)
    for k in range(max_offset + 1):
        a, b = visual[: len(visual) - k], acoustic[k:]
        if a.std() > 0 and b.std() > 0:
            out[k] = np.corrcoef(a, b)[0, 1]
    return out


ACOUSTIC_MEASURES = {
    # The wide-band amplitude envelope, which mouth opening tracks in natural speech
    # (Chandrasekaran et al., "The natural statistics of audiovisual speech", 2009).
    "envelope": audio.frame_rms,
    "energy_db": audio.frame_energy_db,
}


def best_offset(
    example: Mapping, max_offset: int = 7, acoustic: str = "envelope"
) -> tuple[int, np.ndarray]:
    """The offset at which mouth opening best correlates with the audio (its amplitude
    envelope, or its energy in dB), and the correlation curve over offsets."""
    correlations = offset_correlations(
        mouth_opening(np.asarray(example["landmarks"])),
        ACOUSTIC_MEASURES[acoustic](np.asarray(example["waveform"])),
        max_offset,
    )
    return int(np.nanargmax(correlations)), correlations


def offset_study(
    examples: Iterable[Mapping], max_offset: int = 7, acoustic: str = "envelope"
) -> dict:
    """Fig. 4 on our corpus: per utterance the best offset against the injected delay."""
    if acoustic not in ACOUSTIC_MEASURES:
        raise ValueError(f"acoustic: expected one of {sorted(ACOUSTIC_MEASURES)}, got {acoustic!r}")
    best, injected, curves = [], [], []
    for example in examples:
        offset, curve = best_offset(example, max_offset, acoustic)
        best.append(offset)
        injected.append(int(example["av_delay_frames"]))
        curves.append(curve)
    best, injected = np.array(best), np.array(injected)
    return {
        "num_utterances": len(best),
        "share_at_injected_delay": float(np.mean(best == injected)) if len(best) else float("nan"),
        "share_within_one_frame": float(np.mean(np.abs(best - injected) <= 1))
        if len(best)
        else float("nan"),
        "best_offsets": best,
        "injected_delays": injected,
        "curves": np.array(curves),
    }


def delay_blind_lmd(
    examples: Iterable[Mapping], delays: Sequence[int], window: int = 16, hop: int = 8
) -> dict:
    """How close to the real lips audio can get without knowing the injected delay.

    Each utterance's lips lead its audio by a delay drawn from `delays`, which a model that
    sees only the audio and one frame cannot know. This predictor knows the exact lip track
    at each possible delay and outputs, per frame and point, the median over those delays
    (ground-truth landmarks, edges held): its LMD against the real lips, over windows of
    `window` frames with `hop`, beside the static baseline's (the identity frame repeated,
    averaged over every frame of the utterance as the identity). A floor no audio-driven
    model of this corpus needs to stay above, and a ceiling on what the delay costs.
    """
    delays = np.asarray(list(delays), np.int64)
    blind, static = [], []
    for example in examples:
        track = np.asarray(example["landmarks"], np.float64)
        length, delay = len(track), int(example["av_delay_frames"])
        frames = np.arange(length)
        # Lips at assumed delay d show what the true track shows d_true - d frames later.
        shifted = track[np.clip(frames[None] + delay - delays[:, None], 0, length - 1)]
        predicted = np.median(shifted, axis=0)
        for start in range(0, length - window + 1, hop):
            real = track[start : start + window]
            blind.append(metrics.landmark_distance(real, predicted[start : start + window]))
            stills = np.repeat(track[:, None], window, axis=1)  # every frame as the identity
            static.append(
                metrics.landmark_distance(np.broadcast_to(real, stills.shape), stills).mean()
            )
    blind_mean, static_mean = float(np.mean(blind)), float(np.mean(static))
    return {
        "windows": len(blind),
        "delay_blind_lmd": blind_mean,
        "static_lmd": static_mean,
        "delay_blind_vs_static": blind_mean / static_mean - 1.0,
    }


def _decode(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def bilabial_closures(example: Mapping) -> list[dict]:
    """For each p/b/m: whether some frame showing it has closed lips (gap < 0.5 px)."""
    phonemes = example["phonemes"]
    events = [
        (_decode(p), float(s), float(e))
        for p, s, e in zip(phonemes["phoneme"], phonemes["start"], phonemes["end"], strict=True)
    ]
    opening = mouth_opening(np.asarray(example["landmarks"]))
    results = []
    for phoneme, first, last in visemes.bilabial_frames(events, int(example["av_delay_frames"])):
        frames = [f for f in range(first, last + 1) if 0 <= f < len(opening)]
        if not frames:  # a bilabial so short that no frame centre falls in it
            frames = [f for f in (first,) if 0 <= f < len(opening)]
        if not frames:
            continue
        gap = float(min(opening[f] for f in frames))
        results.append({"phoneme": phoneme, "frames": frames, "min_gap": gap,
                        "closed": gap < CLOSED_GAP_PIXELS})  # fmt: skip
    return results


def thumbnail(frame: np.ndarray, size: int = 16) -> np.ndarray:
    """A small float thumbnail (size * size * 3,) of a 64 x 64 frame, by block averaging."""
    frame = np.asarray(frame, np.float64)
    block = frame.shape[0] // size
    small = frame[: block * size, : block * size].reshape(size, block, size, block, 3)
    return small.mean(axis=(1, 3)).reshape(-1)


def speaker_identification(frames_by_speaker: Mapping[str, list[np.ndarray]]) -> dict:
    """How distinct speakers look: leave-one-out nearest-centroid speaker identification
    from 16 x 16 thumbnails of single frames, and the ratio of mean between-speaker to
    within-speaker thumbnail distance."""
    names = sorted(frames_by_speaker)
    thumbs = {n: np.stack([thumbnail(f) for f in frames_by_speaker[n]]) for n in names}
    if any(len(t) < 2 for t in thumbs.values()):
        raise ValueError("frames_by_speaker: every speaker needs at least two frames")
    sums = {n: t.sum(axis=0) for n, t in thumbs.items()}
    correct, total, within, between = 0, 0, [], []
    for name in names:
        for thumb in thumbs[name]:
            distances = {}
            for other in names:
                count = len(thumbs[other])
                centroid = (
                    (sums[other] - thumb) / (count - 1) if other == name else sums[other] / count
                )
                distances[other] = float(np.linalg.norm(thumb - centroid))
            correct += min(distances, key=distances.get) == name
            total += 1
            within.append(distances[name])
            between.extend(d for other, d in distances.items() if other != name)
    return {
        "num_speakers": len(names),
        "identification_accuracy": correct / total,
        "chance": 1 / len(names),
        "between_within_distance_ratio": float(np.mean(between) / np.mean(within)),
    }
