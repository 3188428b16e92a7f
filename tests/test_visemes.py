"""Phonemes -> articulation: targets, coarticulation, closures and the audio-visual lead."""

import numpy as np
import pytest

from data_pipeline.synthetic_lips import visemes

# "_ b A: m _": silence, a bilabial, an open vowel, a bilabial, silence.
PHONEMES = [
    ("_:", 0.0, 0.30),
    ("b", 0.30, 0.38),
    ("A:", 0.38, 0.70),
    ("m", 0.70, 0.80),
    ("_", 0.80, 1.20),
]


def test_targets_are_reached_and_bilabials_close():
    track = visemes.articulation_track(PHONEMES, num_frames=30)
    assert track.shape == (30, 7) and track.dtype == np.float32
    fps = visemes.FPS
    vowel_frames = range(int(0.45 * fps), int(0.62 * fps))
    assert all(track[f, visemes.OPEN] > 0.6 for f in vowel_frames)
    for _, first, last in visemes.bilabial_frames(PHONEMES, delay_frames=0):
        frames = range(first, last + 1)
        assert any(track[f, visemes.CLOSURE] == 1.0 and track[f, visemes.OPEN] == 0 for f in frames)
    assert track[2, visemes.OPEN] < 0.05  # mouth at rest in the leading silence


def test_lips_anticipate_the_vowel():
    # Pause, open vowel, pause: the jaw starts opening in the 40 ms before the vowel's
    # acoustic onset more than it stays open in the 40 ms after its offset.
    phonemes = [("_", 0.0, 0.4), ("A:", 0.4, 0.6), ("_", 0.6, 1.0)]
    track = visemes.articulation_track(phonemes, num_frames=25)
    before_onset, after_offset = track[9, visemes.OPEN], track[15, visemes.OPEN]
    assert before_onset > after_offset > 0.0
    assert track[12, visemes.OPEN] > 2 * before_onset


@pytest.mark.parametrize("delay", [1, 3, 4])
def test_delay_shifts_the_track_earlier(delay):
    base = visemes.articulation_track(PHONEMES, num_frames=30)
    led = visemes.articulation_track(PHONEMES, num_frames=30, delay_frames=delay)
    np.testing.assert_allclose(led[: 30 - delay], base[delay:], atol=1e-6)


def test_short_bilabial_still_closes():
    phonemes = [("a", 0.0, 0.205), ("p", 0.205, 0.225), ("a", 0.225, 0.5)]
    track = visemes.articulation_track(phonemes, num_frames=12)
    assert track[:, visemes.CLOSURE].max() == 1.0


def test_style_scales_opening():
    calm = visemes.articulation_track(PHONEMES, 30, style=visemes.ArticulationStyle(open_gain=0.8))
    wide = visemes.articulation_track(PHONEMES, 30, style=visemes.ArticulationStyle(open_gain=1.1))
    assert wide[:, visemes.OPEN].max() > calm[:, visemes.OPEN].max()


def test_unknown_symbols_fall_back_on_their_class():
    assert visemes.visemes_of("a#") == visemes.PHONEME_VISEMES["a#"]
    assert visemes.visemes_of("t2") == visemes.PHONEME_VISEMES["t"]
    assert visemes.visemes_of("_!")[0].targets[visemes.OPEN] == 0.0
    assert visemes.visemes_of("Q9") is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_frames": 0}, "num_frames"),
        ({"num_frames": 10, "delay_frames": -1}, "delay_frames"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        visemes.articulation_track(PHONEMES, **kwargs)
    with pytest.raises(ValueError, match="phonemes"):
        visemes.articulation_track([], 10)
