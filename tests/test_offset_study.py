"""The Fig. 4 offset study (lipjax.eval.offset_study) on series with known offsets."""

from __future__ import annotations

import numpy as np
import pytest

from lipjax.data.audio import SAMPLES_PER_VIDEO_FRAME
from lipjax.eval import offset_study


def _example(lag: int, frames: int = 80, seed: int = 0, delay: int | None = None) -> dict:
    """Lips whose inner-lip gap follows a random smooth signal s(t) and a waveform whose
    loudness follows s(t - lag): the audio lags the lips by `lag` frames."""
    rng = np.random.default_rng(seed)
    signal = np.convolve(rng.uniform(0, 1, frames + 20), np.ones(5) / 5, mode="same")[10:-10]
    landmarks = np.zeros((frames, 20, 2))
    landmarks[:, :, 0] = np.arange(20)
    for upper, lower in ((13, 19), (14, 18), (15, 17)):  # inner-lip pairs, 4 s(t) apart
        landmarks[:, lower, 0] = landmarks[:, upper, 0]
        landmarks[:, lower, 1] = 4 * signal
    loudness = np.concatenate([np.full(lag, signal[0]), signal[: frames - lag]])
    noise = rng.standard_normal((frames, SAMPLES_PER_VIDEO_FRAME))
    waveform = (0.1 * loudness[:, None] * noise).reshape(-1).astype(np.float32)
    log_mel = np.repeat(np.repeat(20 * np.log10(loudness + 1e-3), 4)[:, None], 8, axis=1)
    return {
        "landmarks": landmarks.astype(np.float32),
        "waveform": waveform,
        "log_mel": log_mel,
        "av_delay_frames": lag if delay is None else delay,
        "speaker": b"s1",
    }


def test_the_study_finds_a_known_lag_per_video():
    examples = [_example(lag, seed=lag) for lag in (0, 1, 2, 3, 4, 5)]
    result = offset_study.study(examples)
    np.testing.assert_array_equal(result["best_offsets"], [0, 1, 2, 3, 4, 5])
    summary = result["summary"]
    assert summary["share_best_offset_at_delay"] == 1.0
    assert summary["videos_per_best_offset"] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert result["curves"].shape == (6, 8)
    assert result["speakers"] == ["s1"] * 6


def test_unknown_delays_give_no_recovery_share():
    result = offset_study.study([_example(2, delay=-1)])
    assert result["best_offsets"].tolist() == [2]
    assert "share_best_offset_at_delay" not in result["summary"]


@pytest.mark.parametrize("acoustic", ["envelope", "energy_db", "mel_change"])
def test_every_acoustic_measure_recovers_the_lag(acoustic):
    examples = [_example(3, seed=seed) for seed in range(3)]
    visual = "lip_motion" if acoustic == "mel_change" else "opening"
    result = offset_study.study(examples, visual=visual, acoustic=acoustic)
    assert result["best_offsets"].tolist() == [3, 3, 3]


def test_lip_motion_ignores_translation_and_mel_change_by_hand():
    mouth = np.random.default_rng(0).normal(size=(1, 20, 2))
    moving = mouth + np.arange(5)[:, None, None] * np.array([2.0, -1.0])
    np.testing.assert_allclose(offset_study.lip_motion(moving), 0.0, atol=1e-12)
    centred = mouth - mouth.mean(axis=1, keepdims=True)
    growing = np.concatenate([centred, 1.5 * centred])
    expected = 0.5 * np.linalg.norm(centred[0], axis=-1).mean()
    assert offset_study.lip_motion(growing) == pytest.approx([expected])
    ramp = np.repeat(np.repeat(np.arange(4.0) * 3, 4)[:, None], 128, axis=1)
    np.testing.assert_allclose(offset_study.mel_change(ramp), [3.0, 3.0, 3.0])


def test_series_are_cut_to_shared_frames_and_bad_names_refused():
    example = _example(0, frames=30)
    visual, acoustic = offset_study.paired_series(example, "opening", "mel_change")
    assert len(visual) == len(acoustic) == 29
    visual, acoustic = offset_study.paired_series(example, "opening", "envelope")
    assert len(visual) == len(acoustic) == 30
    with pytest.raises(ValueError, match="visual"):
        offset_study.paired_series(example, "flow", "envelope")
    with pytest.raises(ValueError, match="no utterances"):
        offset_study.study([])


def test_figure_and_tables_are_written(tmp_path):
    result = offset_study.study([_example(lag, seed=lag) for lag in (1, 2, 2)])
    files = offset_study.write_outputs(result, tmp_path, "study")
    assert [f.name for f in files] == ["study.png", "study.json", "study.csv"]
    assert all(f.stat().st_size > 0 for f in files)
    lines = (tmp_path / "study.csv").read_text().splitlines()
    assert lines[0].startswith("video,speaker,delay,best_offset,r_0")
    assert len(lines) == 4
