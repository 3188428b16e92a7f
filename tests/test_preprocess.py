"""Preprocessing of real corpora: decoding, bad inputs, dlib landmarks, the region crop."""

import json

import numpy as np
import pytest
import scipy.io.wavfile
import scipy.ndimage
import skimage.color
import skimage.data

from data_pipeline import preprocess
from lipjax.data import audio, crop, landmarks, video_io

ASTRONAUT_MOUTH = (222, 145)  # (x, y): the middle of her lips in the 512 x 512 image


@pytest.fixture(scope="module")
def astronaut_gray():
    return (skimage.color.rgb2gray(skimage.data.astronaut()) * 255).astype(np.uint8)


def _write_clip(path, num_frames=20, fps=25, seconds=None, with_audio=True, size=64):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (num_frames, size, size, 3), dtype=np.uint8)
    seconds = num_frames / fps if seconds is None else seconds
    sound = 0.1 * rng.standard_normal(round(seconds * audio.SAMPLE_RATE)).astype(np.float32)
    video_io.write_mp4(path, frames, fps, sound if with_audio else None, audio.SAMPLE_RATE)
    np.save(landmarks.sidecar_path(path), _mouth(num_frames, size / 2))
    return frames


def _mouth(num_frames, centre, width=20.0):
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    ring = np.stack([width / 2 * np.cos(angles), width / 4 * np.sin(angles)], axis=-1)
    return np.repeat((ring + centre)[None], num_frames, axis=0).astype(np.float32)


def _options(**changes):
    return preprocess.PreprocessOptions(**{"landmarks": "sidecar", **changes})


def test_region_crop_equals_the_crop_rule_everywhere_in_the_frame():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (5, 120, 160, 3), dtype=np.uint8)
    for centre in [(80, 60), (3, 4), (158, 118), (-15, 50), (170, 130)]:
        for width in (8.0, 30.0, 90.0):
            points = _mouth(5, np.array(centre, float), width) + rng.normal(0, 1, (5, 20, 2))
            expected = crop.crop_video(frames, points, smoothing_window=3)
            got = preprocess.crop_video(frames, points, smoothing_window=3)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])


def test_a_clip_becomes_an_example(tmp_path):
    video = tmp_path / "s1" / "abcd1e.mp4"
    video.parent.mkdir()
    _write_clip(video, num_frames=20)
    utterance = preprocess.Utterance("s1_abcd1e", "s1", "abcd1e", str(video))
    example = preprocess.preprocess(utterance, _options())
    assert example["frames"].shape == (20, 64, 64, 3)
    assert example["log_mel"].shape == (80, 128)
    assert example["waveform"].shape == (20 * audio.SAMPLES_PER_VIDEO_FRAME,)
    assert example["landmarks"].shape == (20, 20, 2)
    # The crop box is centred on the mouth and 1.3x its width: points span 64 / 1.3 px.
    span = example["landmarks"][..., 0].max(axis=1) - example["landmarks"][..., 0].min(axis=1)
    np.testing.assert_allclose(span, 64 / 1.3, rtol=1e-4)
    assert example["speaker"] == "s1" and example["av_delay_frames"] == -1


def test_wav_audio_at_another_rate_is_resampled(tmp_path):
    video = tmp_path / "clip.mp4"
    _write_clip(video, num_frames=25, with_audio=False)
    tone = np.sin(2 * np.pi * 440 * np.arange(50_000) / 50_000)  # 1 s at GRID's 50 kHz
    scipy.io.wavfile.write(tmp_path / "clip.wav", 50_000, (tone * 10_000).astype(np.int16))
    utterance = preprocess.Utterance("k", "s", "clip", str(video), str(tmp_path / "clip.wav"))
    waveform = preprocess.preprocess(utterance, _options())["waveform"]
    assert len(waveform) == 25 * audio.SAMPLES_PER_VIDEO_FRAME
    spectrum = np.abs(np.fft.rfft(waveform))
    assert np.argmax(spectrum) * audio.SAMPLE_RATE / len(waveform) == pytest.approx(440, abs=2)


@pytest.mark.parametrize(
    ("make", "reason", "named"),
    [
        (lambda d: (d / "v.mp4").write_bytes(b""), "empty_video", "v.mp4"),
        (lambda d: (d / "v.mp4").write_bytes(b"not a video" * 100), "corrupt_video", "v.mp4"),
        (lambda d: None, "missing_file", "v.mp4"),
        (lambda d: _write_clip(d / "v.mp4", fps=30), "frame_rate", "30 frames/s"),
        (lambda d: _write_clip(d / "v.mp4", with_audio=False), "missing_audio", "v.mp4"),
        (lambda d: _write_clip(d / "v.mp4", seconds=0.3), "length_mismatch", "0.800 s"),
        (
            lambda d: (
                _write_clip(d / "v.mp4"),
                np.save(d / "v.landmarks.npy", np.zeros((3, 20, 2))),
            ),
            "bad_landmarks",
            "3 frames of landmarks for a video of 20",
        ),
    ],
)
def test_bad_inputs_are_skipped_with_a_reason_naming_the_file(tmp_path, make, reason, named):
    make(tmp_path)
    utterance = preprocess.Utterance("k", "s", "v", str(tmp_path / "v.mp4"))
    with pytest.raises(preprocess.SkipUtterance, match=named) as caught:
        preprocess.preprocess(utterance, _options())
    assert caught.value.reason == reason
    outcome = preprocess.process(utterance, _options())
    assert outcome.example is None and outcome.record()["reason"] == reason


def test_a_rendered_face_without_sidecar_is_a_no_face_skip(tmp_path):
    video = tmp_path / "v.mp4"
    _write_clip(video, num_frames=5)
    landmarks.sidecar_path(video).unlink()
    outcome = preprocess.process(
        preprocess.Utterance("k", "s", "v", str(video)), _options(landmarks="auto")
    )
    assert outcome.landmark_source == "dlib" and outcome.reason == "no_face"
    assert "no face found in frame 0 of 5" in outcome.message


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="landmarks"):
        preprocess.PreprocessOptions(landmarks="opencv").validate()
    with pytest.raises(ValueError, match="smoothing_window"):
        preprocess.PreprocessOptions(smoothing_window=0).validate()
    with pytest.raises(ValueError, match="detect_every"):
        landmarks.DlibLandmarks(detect_every=0)


def test_transcripts(tmp_path):
    align = tmp_path / "a.align"
    align.write_text("0 12250 sil\n12250 20000 bin\n20000 25000 blue\n25000 75000 sil\n")
    utterance = preprocess.Utterance("k", "s", "a", "v.mp4", None, str(align), "grid_align")
    text, words = preprocess.read_transcript(utterance, 3.0)
    assert text == "bin blue" and words == [("bin", 0.49, 0.8), ("blue", 0.8, 1.0)]
    txt = tmp_path / "ABOUT_00001.txt"
    txt.write_text("Text:  ABOUT\nConf:  0.99\n\nDuration: 0.40 seconds\n")
    lrw = preprocess.Utterance("k", "s", "a", "v.mp4", None, str(txt), "lrw")
    text, words = preprocess.read_transcript(lrw, 1.16)
    assert text == "ABOUT" and words[0][0] == "ABOUT"
    assert words[0][1:] == pytest.approx((0.38, 0.78))


def test_dlib_finds_the_astronauts_mouth(astronaut_gray):
    points = landmarks.DlibLandmarks().face_landmarks(astronaut_gray[None])
    assert points.shape == (1, 68, 2)
    mouth = points[0, landmarks.MOUTH]
    assert np.linalg.norm(mouth.mean(axis=0) - ASTRONAUT_MOUTH) < 12
    assert 30 < np.ptp(mouth[:, 0]) < 80  # a mouth, not a face or a dot
    assert landmarks.dlib_model_path().is_file()


def test_tracking_keeps_a_still_face_still_and_follows_a_moving_one(astronaut_gray):
    still = np.repeat(astronaut_gray[None], 6, axis=0)
    points = landmarks.DlibLandmarks(detect_every=100).face_landmarks(still)
    np.testing.assert_array_equal(points, np.repeat(points[:1], 6, axis=0))
    moving = np.stack(
        [scipy.ndimage.shift(astronaut_gray, (0, 3 * t), order=0, mode="nearest") for t in range(8)]
    )
    tracked = landmarks.DlibLandmarks(detect_every=100).face_landmarks(moving)[:, landmarks.MOUTH]
    motion = tracked.mean(axis=1)[:, 0] - tracked[0].mean(axis=0)[0]
    np.testing.assert_allclose(motion, 3 * np.arange(8), atol=2.0)


def test_no_face_is_an_error_naming_the_frame():
    blank = np.full((3, 200, 200), 128, np.uint8)
    with pytest.raises(landmarks.NoFaceError, match="frame 0 of 3"):
        landmarks.DlibLandmarks().face_landmarks(blank)


def test_build_report_lines_and_summary(tmp_path):
    ok = preprocess.Outcome(
        preprocess.Utterance("a", "s", "a", "a.mp4"), {}, landmark_source="dlib"
    )
    bad = preprocess.Outcome(
        preprocess.Utterance("b", "s", "b", "b.mp4"), None, "no_face", "b.mp4: no face", "dlib"
    )
    path = preprocess.report_path(tmp_path, "train")
    preprocess.write_report(path, [ok.record(), bad.record()])
    assert json.loads(path.read_text().splitlines()[1])["reason"] == "no_face"
    summary = preprocess.read_report(tmp_path)["train"]
    assert summary["examples"] == 1 and summary["skipped"] == 1
    assert summary["skipped_by_reason"] == {"no_face": 1}
    assert summary["skipped_files"] == [("b.mp4", "b.mp4: no face")]


def test_dlib_path_crops_the_lips_of_a_real_photo_video(tmp_path):
    photo = skimage.data.astronaut()
    video = tmp_path / "astronaut.mp4"
    sound = np.zeros(8 * audio.SAMPLES_PER_VIDEO_FRAME, np.float32)
    video_io.write_mp4(video, np.repeat(photo[None], 8, axis=0), 25, sound, audio.SAMPLE_RATE)
    utterance = preprocess.Utterance("k", "nasa", "astronaut", str(video))
    outcome = preprocess.process(utterance, preprocess.PreprocessOptions(detect_every=4))
    assert outcome.landmark_source == "dlib" and outcome.example is not None
    example = outcome.example
    assert example["frames"].shape == (8, 64, 64, 3)
    # The mouth box is centred in the crop and spans 1 / 1.3 of it in width.
    low, high = example["landmarks"].min(axis=1), example["landmarks"].max(axis=1)
    np.testing.assert_allclose((low + high) / 2, 32.0, atol=0.5)
    np.testing.assert_allclose(np.max(high - low, axis=1), 64 / 1.3, atol=0.5)
    # Lips (between the outer and inner lip lines) are redder than the crop's corners.
    frame, points = example["frames"][0].astype(float), example["landmarks"][0]
    lips = np.rint((points[[2, 3, 4, 8, 9, 10]] + points[[13, 14, 15, 17, 18, 19]]) / 2).astype(int)
    redness = frame[..., 0] - frame[..., 1]
    corners = np.concatenate([redness[:6, :6].ravel(), redness[:6, -6:].ravel()])
    assert redness[lips[:, 1], lips[:, 0]].mean() > corners.mean() + 12
