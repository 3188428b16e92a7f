"""eSpeak NG synthesis: determinism, event timings against the audio, voices, processes."""

from __future__ import annotations

import itertools
import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from data_pipeline.synthetic_lips import speech

SENTENCES = (
    "bin blue at ef two now",
    "place red by pee eight please",
    "set white with kay six again",
    "lay green in zee seven soon",
)
MALE = speech.Voice("en-us+m3")
FEMALE_WITH_ECHO = speech.Voice("en-gb-x-rp+f2", pitch=55, pitch_range=60, rate=160)
KLATT = speech.Voice("en+klatt", rate=190)
VOICES = (speech.Voice("en-us"), MALE, FEMALE_WITH_ECHO, KLATT)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _samples(utterance: speech.Utterance, start: float, end: float) -> np.ndarray:
    rate = utterance.sample_rate
    return utterance.waveform[round(start * rate) : round(end * rate)]


def _peak_rms(utterance: speech.Utterance, window: float = 0.02) -> float:
    n = round(window * utterance.sample_rate)
    power = np.convolve(np.square(utterance.waveform, dtype=np.float64), np.ones(n) / n, "valid")
    return float(np.sqrt(power.max()))


def _median_f0(utterance: speech.Utterance) -> float:
    """Median F0 (Hz) over loud frames, from the autocorrelation peak in 60..400 Hz."""
    rate, frame = utterance.sample_rate, 1024
    lags = np.arange(rate // 400, rate // 60)
    f0s = []
    waveform = utterance.waveform.astype(np.float64)
    threshold = 0.3 * _peak_rms(utterance)
    for start in range(0, len(waveform) - frame, frame // 2):
        x = waveform[start : start + frame]
        if _rms(x) < threshold:
            continue
        x = x - x.mean()
        correlation = np.correlate(x, x, "full")[frame - 1 :]
        f0s.append(rate / lags[np.argmax(correlation[lags])])
    return float(np.median(f0s))


@pytest.fixture(scope="module")
def utterances() -> dict[tuple[str, speech.Voice], speech.Utterance]:
    return {(text, voice): speech.synthesize(text, voice) for text in SENTENCES for voice in VOICES}


def test_waveform_format(utterances):
    for utterance in utterances.values():
        assert utterance.sample_rate == 22050
        assert utterance.waveform.dtype == np.float32 and utterance.waveform.ndim == 1
        assert np.abs(utterance.waveform).max() <= 1.0
        assert 1.0 < utterance.duration < 4.0
        assert _peak_rms(utterance) > 0.05


def test_same_text_and_voice_give_identical_output():
    for voice in VOICES:
        first = speech.synthesize(SENTENCES[1], voice)
        speech.synthesize(SENTENCES[2], FEMALE_WITH_ECHO)  # state a shared library would keep
        again = speech.synthesize(SENTENCES[1], voice)
        np.testing.assert_array_equal(first.waveform, again.waveform)
        assert first.phonemes == again.phonemes and first.words == again.words


def test_raw_event_samples_are_absolute_indices_into_the_audio():
    samples, events, rate = speech._run_espeak(SENTENCES[0], MALE)
    phonemes = [e for e in events if e.type == speech._EVENT_PHONEME]
    positions = [e.sample for e in phonemes]
    assert rate == 22050 and samples.dtype == np.int16
    assert positions == sorted(positions)
    # eSpeak closes with a zero-length "_" exactly at the end of the audio...
    assert phonemes[-1].phoneme == "_" and phonemes[-1].sample == len(samples)
    # ...after the sentence pause, which is digital silence.
    assert phonemes[-2].phoneme == "_:" and not samples[phonemes[-2].sample :].any()
    assert next(e.sample for e in events if e.type == speech._EVENT_WORD) == 0


def test_phonemes_tile_the_waveform(utterances):
    for utterance in utterances.values():
        phonemes = utterance.phonemes
        assert phonemes[0].start == 0.0
        assert phonemes[-1].end == pytest.approx(utterance.duration)
        for previous, current in itertools.pairwise(phonemes):
            assert previous.end == current.start
        assert all(p.end > p.start for p in phonemes)
        assert all(p.phoneme and p.phoneme == p.phoneme.strip() for p in phonemes)
        assert all("'" not in p.phoneme and "," not in p.phoneme for p in phonemes)
        assert any(p.stress == 2 for p in phonemes)
        assert phonemes[-1].is_pause


def test_speech_is_inside_phonemes_and_silence_inside_pauses(utterances):
    for utterance in utterances.values():
        pause = utterance.phonemes[-1]  # the sentence pause
        assert pause.phoneme == "_:" and pause.end - pause.start > 0.2
        pause_rms = _rms(_samples(utterance, pause.start, pause.end))
        vowels = [p for p in utterance.phonemes if p.stress == 2]
        vowel_rms = min(_rms(_samples(utterance, p.start, p.end)) for p in vowels)
        assert vowel_rms > 0.1 * _peak_rms(utterance)
        assert vowel_rms > 20 * pause_rms


def test_voiceless_stops_open_with_their_silent_closure(utterances):
    checked = 0
    for (text, voice), utterance in utterances.items():
        window = 0.010
        peak = _peak_rms(utterance)
        for previous, stop in itertools.pairwise(utterance.phonemes):
            if stop.phoneme not in ("p", "t", "k") or previous.is_pause:
                continue
            closure = _samples(utterance, stop.start, stop.start + window)
            before = _samples(utterance, stop.start - window, stop.start)
            if voice.variant == FEMALE_WITH_ECHO.variant:
                assert _rms(closure) < 0.06 * peak, (text, stop)  # only the voice's echo
            else:
                assert not closure.any(), (text, stop)  # digital silence: lips are shut
                assert np.count_nonzero(before) > 0.9 * before.size, (text, stop)
            checked += 1
    assert checked >= 30


def test_bilabial_stop_starts_with_closure_then_releases():
    utterance = speech.synthesize("place red by pee eight please", MALE)
    stops = [p for p in utterance.phonemes if p.phoneme == "p"]
    assert len(stops) == 3
    for stop in stops:
        segment = _samples(utterance, stop.start, stop.end)
        head = segment[: len(segment) // 3]
        assert _rms(head) < 0.01 * _peak_rms(utterance)
        assert _rms(segment[len(segment) // 2 :]) > 10 * _rms(head) + 1e-3  # the burst


def test_word_events_follow_the_text(utterances):
    for (text, _), utterance in utterances.items():
        words = utterance.words
        assert [w.word for w in words] == text.split()
        phoneme_starts = {p.start for p in utterance.phonemes}
        for previous, current in itertools.pairwise(words):
            assert previous.end <= current.start
        for word in words:
            assert 0.0 <= word.start < word.end <= utterance.duration
            assert word.start in phoneme_starts


def test_words_spoken_as_one_keep_their_text():
    # eSpeak's dictionary speaks "at a" as one word with one word event.
    words = speech.synthesize("set red at a one now", MALE).words
    assert [w.word for w in words] == ["set", "red", "at a", "one", "now"]


def test_different_voices_sound_different(utterances):
    text = SENTENCES[0]
    waveforms = [utterances[text, voice].waveform for voice in VOICES]
    for i in range(len(waveforms)):
        for j in range(i + 1, len(waveforms)):
            a, b = waveforms[i], waveforms[j]
            assert a.shape != b.shape or not np.array_equal(a, b)
    low = _median_f0(speech.synthesize(text, speech.Voice("en-us+m3", pitch=30)))
    male = _median_f0(utterances[text, MALE])
    female = _median_f0(speech.synthesize(text, speech.Voice("en-us+f2")))
    assert 70 < low < male < 150 < female < 300


def test_rate_changes_duration():
    slow = speech.synthesize(SENTENCES[0], speech.Voice("en-us", rate=140))
    fast = speech.synthesize(SENTENCES[0], speech.Voice("en-us", rate=200))
    assert slow.duration > 1.25 * fast.duration


def test_sample_voice_draws_valid_distinct_voices():
    voices = [speech.sample_voice(np.random.default_rng(seed)) for seed in range(40)]
    assert voices == [speech.sample_voice(np.random.default_rng(seed)) for seed in range(40)]
    assert len(set(voices)) == 40
    assert len({v.name for v in voices}) >= 25
    installed = set(speech.available_variants())
    assert set(speech.MALE_VARIANTS + speech.FEMALE_VARIANTS) <= installed
    for voice in voices:
        assert voice.language in speech.ENGLISH_VOICES
        assert 140 <= voice.rate <= 200
        assert speech.Voice.from_dict(voice.to_dict()) == voice


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="text"):
        speech.synthesize("", MALE)
    with pytest.raises(ValueError, match="text"):
        speech.synthesize("   ", MALE)
    with pytest.raises(ValueError, match="unknown eSpeak voice"):
        speech.synthesize("hello", speech.Voice("xx-nonexistent"))
    with pytest.raises(ValueError, match="unknown variant"):
        speech.synthesize("hello", speech.Voice("en-us+nonexistent"))
    with pytest.raises(ValueError, match="voice"):
        speech.synthesize("hello", "en-us")
    for field, value in (("pitch", 101), ("pitch_range", -1), ("rate", 79), ("rate", 451)):
        with pytest.raises(ValueError, match=rf"Voice\.{field}"):
            speech.Voice("en-us", **{field: value})
    with pytest.raises(ValueError, match=r"Voice\.pitch"):
        speech.Voice("en-us", pitch=50.5)
    with pytest.raises(ValueError, match=r"Voice\.name"):
        speech.Voice("")


def test_missing_library_asks_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails
    monkeypatch.setattr(speech, "_library_copy", {})
    with pytest.raises(RuntimeError, match="pip install espeakng-loader"):
        speech.synthesize("hello", speech.Voice("en-us"))


def _synthesize_job(job: tuple[str, speech.Voice]) -> tuple[np.ndarray, list, list]:
    utterance = speech.synthesize(*job)
    return utterance.waveform, utterance.phonemes, utterance.words


def test_threads_and_spawned_processes_match_the_parent():
    jobs = [(text, voice) for text in SENTENCES[:2] for voice in VOICES]
    expected = [_synthesize_job(job) for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(_synthesize_job, jobs))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        spawned = pool.map(_synthesize_job, jobs[::-1])[::-1]  # another order than the parent's
    for results in (threaded, spawned):
        for (waveform, phonemes, words), (waveform0, phonemes0, words0) in zip(
            results, expected, strict=True
        ):
            np.testing.assert_array_equal(waveform, waveform0)
            assert phonemes == phonemes0 and words == words0
