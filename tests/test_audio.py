"""The log-mel front end against librosa, in NumPy and in JAX."""

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from lipjax.data import audio


def _speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic tones with an amplitude envelope plus noise: energy in many mel bands."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * audio.SAMPLE_RATE)) / audio.SAMPLE_RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / audio.SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.1 * envelope * voiced + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _librosa_log_mel(waveform: np.ndarray) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=waveform,
        sr=audio.SAMPLE_RATE,
        n_fft=audio.N_FFT,
        hop_length=audio.HOP_LENGTH,
        n_mels=audio.N_MELS,
        fmax=audio.FMAX,
        power=2.0,
    )
    return librosa.power_to_db(power, ref=1.0, amin=audio.AMIN, top_db=None).T


def test_four_mel_frames_per_video_frame():
    waveform = _speech_like(0.64)
    assert waveform.size == 16 * audio.SAMPLES_PER_VIDEO_FRAME
    features = audio.log_mel(waveform)
    assert features.shape == (64, 128)
    assert features.dtype == np.float32
    # A partial last video frame is padded to a whole one.
    assert audio.log_mel(waveform[:-100]).shape == (64, 128)
    assert audio.log_mel(waveform[:1]).shape == (4, 128)


def test_matches_librosa():
    waveform = audio.pad_to_video_frames(_speech_like(1.0))
    ours = audio.log_mel(waveform)
    reference = _librosa_log_mel(waveform)
    # librosa's centred STFT has one frame more (centred on the last sample); we keep 4T.
    assert reference.shape[0] == ours.shape[0] + 1
    np.testing.assert_allclose(ours, reference[:-1], atol=1e-3, rtol=0)


def test_per_chunk_mode_matches_the_authors_librosa_calls():
    # Their librosa padded the centred STFT by reflection and clipped each call's dB at 80
    # below its maximum (power_to_db's default top_db); a pure low tone beside speech has
    # mel bands far more than 80 dB below its peak, so the clip bites.
    waveform = audio.pad_to_video_frames(_speech_like(0.4, seed=1))
    tone = np.sin(2 * np.pi * 200 * np.arange(len(waveform)) / audio.SAMPLE_RATE)
    waveform[: len(waveform) // 2] = tone[: len(waveform) // 2].astype(np.float32)
    ours = audio.log_mel(waveform, mode="per_chunk")
    chunks = waveform.reshape(-1, audio.SAMPLES_PER_VIDEO_FRAME)
    reference = []
    for chunk in chunks:
        power = librosa.feature.melspectrogram(
            y=chunk,
            sr=audio.SAMPLE_RATE,
            n_fft=audio.N_FFT,
            hop_length=audio.PER_CHUNK_HOP,
            n_mels=audio.N_MELS,
            fmax=audio.FMAX,
            pad_mode="reflect",
        )
        reference.append(librosa.power_to_db(power, amin=audio.AMIN, top_db=80.0).T)
    reference = np.concatenate(reference)
    per_chunk = reference.reshape(-1, audio.MELS_PER_VIDEO_FRAME * audio.N_MELS)
    assert np.any(per_chunk.max(axis=1) - per_chunk.min(axis=1) >= 79.9)  # the clip bites
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)
    jax_version = np.asarray(audio.log_mel(jnp.asarray(waveform), mode="per_chunk", xp=jnp))
    np.testing.assert_allclose(jax_version, ours, atol=1e-2, rtol=0)


def test_jax_matches_numpy():
    waveform = _speech_like(0.64, seed=2)
    expected = audio.log_mel(waveform)
    compiled = jax.jit(lambda w: audio.log_mel(w, xp=jnp))
    got = np.asarray(compiled(jnp.asarray(waveform)))
    # float32 FFTs on different backends: agree to a small fraction of a dB where the
    # signal is above the floor.
    loud = expected > -60
    assert loud.mean() > 0.5
    np.testing.assert_allclose(got[loud], expected[loud], atol=0.02)
    np.testing.assert_allclose(got, expected, atol=0.5)


@pytest.mark.parametrize(
    ("waveform", "sample_rate", "message"),
    [
        (np.zeros(1000, np.float32), 16_000, "sample rate 16000"),
        (np.zeros((2, 1000), np.float32), 44_100, "mono"),
        (np.zeros(0, np.float32), 44_100, "empty"),
        (np.array([0.0, np.nan] * 100, np.float32), 44_100, "NaN"),
    ],
)
def test_bad_waveforms_are_named(waveform, sample_rate, message):
    with pytest.raises(ValueError, match=message):
        audio.log_mel(waveform, sample_rate)


def test_log_mel_window_cuts_video_frames_and_pads_with_the_quietest_mel_frame():
    log_mel = np.arange(40, dtype=np.float32).reshape(20, 2) % 7  # 5 video frames
    np.testing.assert_array_equal(audio.log_mel_window(log_mel, 1, 2), log_mel[4:12])
    quietest = log_mel[np.argmin(log_mel.mean(axis=1))]
    window = audio.log_mel_window(log_mel, 3, 4)  # frames 3..6: two past the end
    np.testing.assert_array_equal(window[:8], log_mel[12:20])
    np.testing.assert_array_equal(window[8:], np.tile(quietest, (8, 1)))
    window = audio.log_mel_window(log_mel, -1, 2)  # one frame before the start
    np.testing.assert_array_equal(window[:4], np.tile(quietest, (4, 1)))
    np.testing.assert_array_equal(window[4:], log_mel[:4])


@pytest.mark.parametrize("frames", [-1, 9, 2.0, True, "2"])
def test_check_lookahead_refuses_what_is_not_0_to_8_frames(frames):
    with pytest.raises(ValueError, match="audio_lookahead_frames"):
        audio.check_lookahead(frames)
    assert audio.check_lookahead(np.int64(8)) == 8


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        audio.log_mel(np.zeros(1764, np.float32), mode="chunky")


def test_to_model_rate_resamples_and_mixes_down():
    sr = 16_000
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], axis=1)
    mono = audio.to_model_rate(stereo, sr)
    assert mono.shape == (audio.SAMPLE_RATE,)
    spectrum = np.abs(np.fft.rfft(mono))
    peak_hz = np.argmax(spectrum) * audio.SAMPLE_RATE / mono.size
    assert abs(peak_hz - 440) < 2


def test_frame_energy_tracks_loudness():
    quiet_loud = np.concatenate(
        [
            0.001 * np.ones(audio.SAMPLES_PER_VIDEO_FRAME),
            0.1 * np.ones(audio.SAMPLES_PER_VIDEO_FRAME),
        ]
    )
    energy = audio.frame_energy_db(quiet_loud)
    np.testing.assert_allclose(energy, [-60.0, -20.0], atol=1e-6)


def test_log_mel_statistics_normalise_and_convert():
    stats = audio.LogMelStats(-50.0, 20.0)
    db = np.array([[-50.0, -30.0, -90.0]], np.float32)
    np.testing.assert_allclose(stats.normalize(db), [[0.0, 1.0, -2.0]])
    assert stats.normalize(db).dtype == np.float32
    np.testing.assert_allclose(np.asarray(stats.normalize(jnp.asarray(db), xp=jnp)), [[0, 1, -2]])
    fixed = audio.FIXED_LOG_MEL_STATS
    np.testing.assert_allclose(
        stats.renormalize(stats.normalize(db), fixed), fixed.normalize(db), rtol=1e-6, atol=1e-6
    )
    same = stats.normalize(db)
    assert stats.renormalize(same, stats) is same
    for mean, std in ((0.0, 0.0), (float("nan"), 1.0), (-40.0, -3.0)):
        with pytest.raises(ValueError, match="log-mel statistics"):
            audio.LogMelStats(mean, std)


def test_log_mel_statistics_accumulate_exactly_and_configs_choose_them():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(-40, 15, size=(4 * n, 128)).astype(np.float32) for n in (3, 50, 7)]
    accumulator = audio.LogMelStatsAccumulator()
    for chunk in chunks:
        accumulator.add(chunk)
    values = np.concatenate([c.ravel() for c in chunks]).astype(np.float64)
    result = accumulator.result()
    np.testing.assert_allclose([result.mean, result.std], [values.mean(), values.std()], rtol=1e-10)
    assert accumulator.metadata()["count"] == values.size
    with pytest.raises(ValueError, match="no log-mel value"):
        audio.LogMelStatsAccumulator().result()
    # A model config: its own statistics, or the fixed ones where unset (older runs).
    assert audio.model_log_mel_stats({}) == audio.FIXED_LOG_MEL_STATS
    assert audio.model_log_mel_stats({"log_mel_mean": None, "log_mel_std": None}) == (
        audio.FIXED_LOG_MEL_STATS
    )
    own = {"log_mel_mean": -45.5, "log_mel_std": 12.0}
    assert audio.model_log_mel_stats(own) == audio.LogMelStats(-45.5, 12.0)
