"""Phonemes -> lip articulation at 25 fps, with coarticulation and an audio-visual lead.

Each eSpeak phoneme gets an articulatory target (jaw opening, lip spread, rounding,
protrusion, bilabial closure, lip-teeth contact, visible tongue) and a dominance: how
strongly it holds each parameter against its neighbours. The track is the
dominance-weighted mean of the targets, with dominance decaying away from each segment,
faster after it than before it, so lips move towards a sound before it starts
(anticipatory coarticulation). This is the model of Cohen & Massaro, "Modeling
coarticulation in synthetic visual speech" (1993). Bilabials then force a full closure
inside their segment, so every p/b/m closes the lips.

The lips lead the audio: frame t shows the articulation of audio time
(t + delay_frames) / fps, as in real speech (paper Sec. 3.2, Fig. 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from data_pipeline.synthetic_lips.render import ARTICULATION_FIELDS

FPS = 25
OPEN, SPREAD, ROUND, PROTRUDE, CLOSURE, LIP_TEETH, TONGUE = range(len(ARTICULATION_FIELDS))
NUM_PARAMS = len(ARTICULATION_FIELDS)

# Dominance of the parameters a phoneme does not specify: they follow the neighbours.
UNSPECIFIED_DOMINANCE = 0.05
ANTICIPATION_SECONDS = 0.03  # e-folding time of dominance before a segment
CARRYOVER_SECONDS = 0.025  # and after it
# The lips reach each target this long before eSpeak's acoustic segment boundary. Measured
# on the `small` corpus: with it, mouth opening and audio energy correlate best at zero
# offset when no delay is injected (without it, opening lags energy by about 10 ms and the
# injected delay is recovered exactly in 78% of utterances instead of 91%).
ARTICULATORY_LEAD_SECONDS = 0.01
SUBSAMPLES_PER_FRAME = 4  # the articulation of a frame averages its 40 ms (shutter)


@dataclasses.dataclass(frozen=True)
class Viseme:
    """Target values of the parameters a phoneme specifies, and how dominant they are."""

    targets: dict[int, float]
    dominance: float = 1.0


def _v(dominance: float = 1.0, **targets: float) -> Viseme:
    index = {name: i for i, name in enumerate(ARTICULATION_FIELDS)}
    return Viseme({index[k]: v for k, v in targets.items()}, dominance)


# Vowels specify jaw, spread and rounding; consonants mostly what their place needs.
_OPEN_A = _v(open=0.85, spread=0.1, round=0.0, protrude=0.0)
_OPEN_E = _v(open=0.55, spread=0.35, round=0.0, protrude=0.0)
_CLOSE_I = _v(open=0.25, spread=0.8, round=0.0, protrude=0.0)
_SCHWA = _v(open=0.4, spread=0.1, round=0.0, protrude=0.0)
_NURSE = _v(open=0.35, spread=0.0, round=0.35, protrude=0.3)
_STRUT = _v(open=0.6, spread=0.1, round=0.0, protrude=0.0)
_OPEN_O = _v(open=0.7, spread=-0.2, round=0.55, protrude=0.3)
_MID_O = _v(open=0.5, spread=-0.3, round=0.7, protrude=0.45)
_CLOSE_U = _v(open=0.2, spread=-0.5, round=0.9, protrude=0.7)
_BILABIAL = _v(3.0, open=0.0, closure=1.0, lip_teeth=0.0, tongue=0.0)
_LABIODENTAL = _v(2.5, open=0.08, lip_teeth=1.0, closure=0.0)
_DENTAL = _v(1.5, open=0.22, tongue=1.0, spread=0.2)
_SIBILANT = _v(1.2, open=0.08, spread=0.35, tongue=0.0)
_POSTALVEOLAR = _v(1.5, open=0.12, round=0.5, protrude=0.9, spread=-0.2)
_ALVEOLAR = _v(0.6, open=0.18, tongue=0.0)
_LATERAL = _v(0.8, open=0.25, tongue=0.5)
_VELAR = _v(0.5, open=0.22, tongue=0.0)
_RHOTIC = _v(1.0, open=0.15, round=0.45, protrude=0.4)
_GLIDE_W = _v(2.0, open=0.08, round=1.0, protrude=0.8, spread=-0.6)
_GLIDE_J = _v(1.0, open=0.12, spread=0.6)
_ASPIRATE = _v(0.05, open=0.3)
_REST = _v(1.0, open=0.0, spread=0.0, round=0.0, protrude=0.0, closure=0.0, lip_teeth=0.0,
           tongue=0.0)  # fmt: skip

# eSpeak NG's English phoneme mnemonics (all 45 seen in GRID sentences over every English
# voice are here; ";" is a linking y-glide, "t[" the dental t of en-029, "w#" Scottish
# wh). Diphthongs are two targets, each half the segment.
PHONEME_VISEMES: dict[str, tuple[Viseme, ...]] = {
    # vowels
    "a": (_OPEN_A,), "a#": (_SCHWA,), "aa": (_OPEN_A,), "A:": (_OPEN_A,), "A@": (_OPEN_A, _RHOTIC),
    "A": (_OPEN_A,), "E": (_OPEN_E,), "e": (_OPEN_E,), "e@": (_OPEN_E, _SCHWA),
    "i:": (_CLOSE_I,), "i": (_CLOSE_I,), "I": (_CLOSE_I,), "I#": (_CLOSE_I,), "I2": (_CLOSE_I,),
    "i@": (_CLOSE_I, _SCHWA), "i@3": (_CLOSE_I, _SCHWA), "@": (_SCHWA,), "@2": (_SCHWA,),
    "@5": (_SCHWA,), "@#": (_SCHWA,), "3": (_NURSE,), "3:": (_NURSE,), "3:r": (_NURSE, _RHOTIC),
    "V": (_STRUT,), "0": (_OPEN_O,), "0#": (_OPEN_O,), "O": (_OPEN_O,), "O:": (_OPEN_O,),
    "O@": (_OPEN_O, _RHOTIC), "o@": (_OPEN_O, _RHOTIC), "o": (_MID_O,), "oU": (_MID_O, _CLOSE_U),
    "u:": (_CLOSE_U,), "U": (_CLOSE_U,), "U@": (_CLOSE_U, _SCHWA), "aI": (_OPEN_A, _CLOSE_I),
    "aI@": (_OPEN_A, _CLOSE_I), "aI3": (_OPEN_A, _CLOSE_I), "aU": (_OPEN_A, _CLOSE_U),
    "aU@": (_OPEN_A, _CLOSE_U), "aI2": (_OPEN_A, _CLOSE_I), "eI": (_OPEN_E, _CLOSE_I),
    "OI": (_OPEN_O, _CLOSE_I),
    "@L": (_SCHWA, _LATERAL), "@r": (_SCHWA, _RHOTIC), "Vr": (_STRUT, _RHOTIC),
    # consonants
    "p": (_BILABIAL,), "b": (_BILABIAL,), "m": (_BILABIAL,), "m-": (_BILABIAL,),
    "f": (_LABIODENTAL,), "v": (_LABIODENTAL,), "T": (_DENTAL,), "D": (_DENTAL,),
    "s": (_SIBILANT,), "z": (_SIBILANT,), "S": (_POSTALVEOLAR,), "Z": (_POSTALVEOLAR,),
    "tS": (_POSTALVEOLAR,), "dZ": (_POSTALVEOLAR,), "t": (_ALVEOLAR,), "d": (_ALVEOLAR,),
    "t#": (_ALVEOLAR,), "d#": (_ALVEOLAR,), "n": (_ALVEOLAR,), "n-": (_ALVEOLAR,),
    "?": (_ALVEOLAR,), "l": (_LATERAL,), "l/": (_LATERAL,), "l#": (_LATERAL,),
    "k": (_VELAR,), "g": (_VELAR,), "N": (_VELAR,), "x": (_VELAR,), "r": (_RHOTIC,),
    "r-": (_RHOTIC,), "w": (_GLIDE_W,), "W": (_GLIDE_W,), "j": (_GLIDE_J,), "h": (_ASPIRATE,),
    ";": (_GLIDE_J,), "t[": (_DENTAL,), "w#": (_GLIDE_W,),
}  # fmt: skip

_VOWEL_STARTS = set("aAeEiIoOuUV03@")
BILABIALS = frozenset({"p", "b", "m", "m-"})


def is_pause(phoneme: str) -> bool:
    """eSpeak marks pauses and boundaries with "_" symbols (also an empty mnemonic)."""
    return phoneme == "" or phoneme.startswith("_") or phoneme in {"||", "|"}


def visemes_of(phoneme: str) -> tuple[Viseme, ...]:
    """The viseme targets of an eSpeak phoneme; unknown symbols fall back on their class."""
    if is_pause(phoneme):
        return (_REST,)
    symbol = phoneme.strip("'\",%=")
    if symbol in PHONEME_VISEMES:
        return PHONEME_VISEMES[symbol]
    for end in range(len(symbol) - 1, 0, -1):  # strip trailing diacritics: "t2" -> "t"
        if symbol[:end] in PHONEME_VISEMES:
            return PHONEME_VISEMES[symbol[:end]]
    return (_SCHWA,) if symbol[:1] in _VOWEL_STARTS else (_ALVEOLAR,)


@dataclasses.dataclass(frozen=True)
class ArticulationStyle:
    """How one speaker articulates: gains on the range of their movements."""

    open_gain: float = 1.0
    round_gain: float = 1.0
    spread_gain: float = 1.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sample_style(rng: np.random.Generator) -> ArticulationStyle:
    """A speaker's articulation style: some speakers open their mouths more than others."""
    return ArticulationStyle(
        open_gain=float(rng.uniform(0.75, 1.15)),
        round_gain=float(rng.uniform(0.7, 1.1)),
        spread_gain=float(rng.uniform(0.7, 1.1)),
    )


def _segments(
    phonemes: Sequence[tuple[str, float, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flattens phonemes into viseme segments: starts, ends, targets (S, P), dominance (S, P)."""
    starts, ends, targets, dominance = [], [], [], []
    for phoneme, start, end in phonemes:
        parts = visemes_of(phoneme)
        # A short pause (a word boundary) should not close the mouth between two vowels.
        pause_weight = min(1.0, (end - start) / 0.1) if is_pause(phoneme) else 1.0
        edges = np.linspace(start, end, len(parts) + 1)
        for part, part_start, part_end in zip(parts, edges[:-1], edges[1:], strict=True):
            target = np.zeros(NUM_PARAMS)
            weight = np.full(NUM_PARAMS, UNSPECIFIED_DOMINANCE)
            for index, value in part.targets.items():
                target[index] = value
                weight[index] = part.dominance * pause_weight
            starts.append(part_start)
            ends.append(part_end)
            targets.append(target)
            dominance.append(weight)
    return np.array(starts), np.array(ends), np.array(targets), np.array(dominance)


def articulation_track(
    phonemes: Sequence[tuple[str, float, float]],
    num_frames: int,
    delay_frames: int = 0,
    style: ArticulationStyle = ArticulationStyle(),
    fps: int = FPS,
) -> np.ndarray:
    """Articulation (num_frames, 7) float32 of a video whose lips lead the audio.

    Args:
      phonemes: (phoneme, start_s, end_s) covering the audio, in order.
      num_frames: video frames to produce.
      delay_frames: how many frames the lips lead the audio (>= 0).
      style: the speaker's articulation gains.
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames: expected a positive number of frames, got {num_frames}")
    if delay_frames < 0:
        raise ValueError(f"delay_frames: expected >= 0 (lips lead audio), got {delay_frames}")
    if not phonemes:
        raise ValueError("phonemes: expected at least one (phoneme, start, end) event")
    starts, ends, targets, dominance = _segments(phonemes)
    offsets = (np.arange(SUBSAMPLES_PER_FRAME) + 0.5) / SUBSAMPLES_PER_FRAME
    times = (np.arange(num_frames)[:, None] + offsets[None, :] + delay_frames) / fps
    times = times + ARTICULATORY_LEAD_SECONDS
    times = times.reshape(-1)

    before = np.maximum(starts[None, :] - times[:, None], 0.0)  # (time, segment)
    after = np.maximum(times[:, None] - ends[None, :], 0.0)
    decay = np.exp(-before / ANTICIPATION_SECONDS - after / CARRYOVER_SECONDS)
    weights = decay[:, :, None] * dominance[None, :, :]  # (time, segment, param)
    track = np.sum(weights * targets[None], axis=1) / np.maximum(np.sum(weights, axis=1), 1e-12)

    # Every bilabial closes the lips for its whole segment, whatever its neighbours.
    inside = (times[:, None] >= starts[None, :]) & (times[:, None] < ends[None, :])
    bilabial = np.array([visemes_of(p)[0] is _BILABIAL for p, _, _ in _expanded(phonemes)])
    closed = np.any(inside[:, bilabial], axis=1) if bilabial.any() else np.zeros(len(times), bool)
    track = track.reshape(num_frames, SUBSAMPLES_PER_FRAME, NUM_PARAMS).mean(axis=1)
    closed_frames = closed.reshape(num_frames, SUBSAMPLES_PER_FRAME).any(axis=1)
    closed_frames |= _frames_nearest_short_bilabials(phonemes, num_frames, delay_frames, fps)
    track[closed_frames, CLOSURE] = 1.0
    track[closed_frames, OPEN] = 0.0

    track[:, OPEN] *= style.open_gain
    track[:, ROUND] *= style.round_gain
    track[:, PROTRUDE] *= style.round_gain
    track[:, SPREAD] *= style.spread_gain
    low = np.array([0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    return np.clip(track, low, 1.0).astype(np.float32)


def _frame_showing(seconds: float, delay_frames: int, fps: int) -> int:
    """The video frame whose articulation samples audio time `seconds`."""
    return int(np.floor((seconds - ARTICULATORY_LEAD_SECONDS) * fps)) - delay_frames


def _expanded(phonemes: Sequence[tuple[str, float, float]]):
    """One entry per viseme segment, in the order `_segments` makes them."""
    for phoneme, start, end in phonemes:
        for _ in visemes_of(phoneme):
            yield phoneme, start, end


def _frames_nearest_short_bilabials(phonemes, num_frames, delay_frames, fps) -> np.ndarray:
    """A bilabial shorter than a frame may fall between frame samples: close the frame
    nearest its centre, so no closure is lost."""
    closed = np.zeros(num_frames, bool)
    for phoneme, start, end in phonemes:
        if phoneme.strip("'\",%=") in BILABIALS:
            frame = _frame_showing((start + end) / 2, delay_frames, fps)
            if 0 <= frame < num_frames:
                closed[frame] = True
    return closed


def bilabial_frames(
    phonemes: Sequence[tuple[str, float, float]], delay_frames: int, fps: int = FPS
) -> list[tuple[str, int, int]]:
    """For each bilabial: (phoneme, first frame, last frame) of the video frames that show it."""
    out = []
    for phoneme, start, end in phonemes:
        if phoneme.strip("'\",%=") in BILABIALS:
            first = _frame_showing(start, delay_frames, fps)
            last = _frame_showing(max(start, end - 1e-9), delay_frames, fps)
            out.append((phoneme, first, last))
    return out
