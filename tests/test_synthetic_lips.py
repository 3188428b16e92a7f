"""The `synthetic_lips` TFDS builder: contents, determinism, splits, alignment, export."""

import csv
import dataclasses
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_pipeline  # noqa: F401  (registers the builders)
from data_pipeline.synthetic_lips import CONFIGS, SyntheticLips, analysis, corpus, export, preview
from lipjax.data import audio, crop, video_io

TINY = CONFIGS["tiny"]
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    builder = SyntheticLips(config="tiny", data_dir=tmp_path_factory.mktemp("tfds"), num_workers=2)
    builder.download_and_prepare()
    return {split: builder.as_data_source(split=split) for split in corpus.SPLITS}


def _examples(source):
    return [source[i] for i in range(len(source))]


def test_registered_with_tfds(tmp_path):
    assert tfds.builder_cls("synthetic_lips") is SyntheticLips
    builder = tfds.builder("synthetic_lips/tiny", data_dir=tmp_path)
    assert builder.info.file_format.value == "array_record"


def test_split_sizes(tiny):
    assert {split: len(source) for split, source in tiny.items()} == {
        "train": 16,
        "validation": 4,
        "test": 4,
    }


def test_shapes_and_dtypes(tiny):
    for example in _examples(tiny["train"]) + _examples(tiny["test"]):
        n = example["frames"].shape[0]
        assert n >= 25
        assert example["frames"].shape == (n, 64, 64, 3) and example["frames"].dtype == np.uint8
        assert example["log_mel"].shape == (4 * n, 128) and example["log_mel"].dtype == np.float32
        assert example["landmarks"].shape == (n, 20, 2)
        assert example["landmarks"].dtype == np.float32
        assert example["waveform"].shape == (n * audio.SAMPLES_PER_VIDEO_FRAME,)
        assert example["waveform"].dtype == np.float32
        assert np.abs(example["waveform"]).max() <= 1.0
        assert 0 <= int(example["av_delay_frames"]) <= TINY.max_delay_frames
        assert _text(example["speaker"]).startswith("s")
        assert len(_text(example["utterance"])) == 6
        assert len(_text(example["text"]).split()) == 6
        # The stored log-mel is the project's one audio front end applied to the waveform.
        np.testing.assert_allclose(
            example["log_mel"], audio.log_mel(example["waveform"]), atol=1e-4
        )


def test_two_builds_with_one_seed_are_identical(tiny, tmp_path):
    again = SyntheticLips(config="tiny", data_dir=tmp_path, num_workers=1)
    again.download_and_prepare()
    for split in corpus.SPLITS:
        first = {_text(e["speaker"]) + _text(e["utterance"]): e for e in _examples(tiny[split])}
        second = _examples(again.as_data_source(split=split))
        assert len(first) == len(second)
        for example in second:
            reference = first[_text(example["speaker"]) + _text(example["utterance"])]
            for name in ("frames", "log_mel", "landmarks", "waveform"):
                np.testing.assert_array_equal(example[name], reference[name])
            assert example["av_delay_frames"] == reference["av_delay_frames"]


def test_splits_are_disjoint_as_table_1(tiny):
    speakers = {s: {_text(e["speaker"]) for e in _examples(tiny[s])} for s in corpus.SPLITS}
    sentences = {s: {_text(e["text"]) for e in _examples(tiny[s])} for s in corpus.SPLITS}
    assert speakers["train"] == speakers["validation"]  # seen speakers
    assert not speakers["test"] & speakers["train"]  # unseen speakers
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not sentences[a] & sentences[b], (a, b)


def test_landmarks_sit_on_the_lips_in_the_crop(tiny):
    for example in _examples(tiny["train"])[:6]:
        frames = example["frames"].astype(np.float64)
        landmarks = example["landmarks"]
        # The crop box is centred on the (smoothed) mouth box and 1.3x its larger side.
        low, high = landmarks.min(axis=1), landmarks.max(axis=1)
        np.testing.assert_allclose((low + high) / 2, 32.0, atol=3.0)
        assert np.all(np.max(high - low, axis=1) / 64 > 0.6)
        # Midway between outer (49..53) and inner (61..63) upper-lip points is lip, which
        # is redder than the skin in the crop's corners.
        lip_points = (landmarks[:, [2, 3, 4]] + landmarks[:, [13, 14, 15]]) / 2
        t = np.arange(len(frames))[:, None]
        rows = np.clip(lip_points[..., 1].astype(int), 0, 63)
        cols = np.clip(lip_points[..., 0].astype(int), 0, 63)
        lips = frames[t, rows, cols]
        corners = np.concatenate([frames[:, :4, :4], frames[:, :4, -4:]], axis=1)
        redness = lambda rgb: rgb[..., 0] - rgb[..., 1]  # noqa: E731
        assert redness(lips).mean() > redness(corners).mean() + 15


def test_crops_are_the_crop_rule_on_the_rendered_faces(tiny):
    plans = corpus.plan_corpus(TINY)["test"][:1]
    rendered = corpus.render_utterance(plans[0], TINY)
    frames, landmarks = crop.crop_video(
        rendered.faces, rendered.face_landmarks, smoothing_window=TINY.crop_smoothing
    )
    stored = next(
        e
        for e in _examples(tiny["test"])
        if _text(e["utterance"]) == plans[0].sentence.utterance_id
    )
    np.testing.assert_array_equal(stored["frames"], frames)
    np.testing.assert_array_equal(stored["landmarks"], landmarks)


def test_phoneme_timing_is_aligned_with_the_audio(tiny):
    for example in _examples(tiny["train"])[:8]:
        waveform = example["waveform"]
        phonemes = example["phonemes"]
        names = [_text(p) for p in phonemes["phoneme"]]
        starts, ends = np.asarray(phonemes["start"]), np.asarray(phonemes["end"])
        duration = len(waveform) / audio.SAMPLE_RATE
        assert starts[0] == 0.0 and ends[-1] == pytest.approx(duration, abs=1e-3)
        np.testing.assert_allclose(starts[1:], ends[:-1], atol=1e-6)  # contiguous

        def level_db(start, end, waveform=waveform):
            segment = waveform[int(start * audio.SAMPLE_RATE) : int(end * audio.SAMPLE_RATE)]
            return 10 * np.log10(np.mean(segment.astype(np.float64) ** 2) + 1e-12)

        vowels = [
            level_db(s, e)
            for n, s, e in zip(names, starts, ends, strict=True)
            if n[:1] in "aAeEiIoOuUV03@" and e - s > 0.03
        ]
        leading_pause = level_db(starts[0], ends[0])
        assert names[0].startswith("_")
        assert np.median(vowels) > leading_pause + 20
        words = example["words"]
        word_starts = np.asarray(words["start"])
        assert np.all(np.diff(word_starts) > 0)
        assert word_starts[0] >= ends[0] - 1e-6  # speech starts after the leading pause


def test_lips_lead_audio_by_the_injected_delay(tiny):
    # The paper's Fig. 4 study on our corpus; on `small` the exact share is reported in
    # the issue note (about 0.9). Here: tiny's 24 utterances.
    study = analysis.offset_study([e for s in tiny.values() for e in _examples(s)])
    assert study["share_at_injected_delay"] >= 0.6
    assert study["share_within_one_frame"] >= 0.9


def test_a_model_blind_to_the_delay_can_still_beat_the_static_baseline(tiny):
    examples = [e for s in tiny.values() for e in _examples(s)]
    # Knowing each utterance's delay, the lip track is reproduced exactly.
    for example in examples[:3]:
        known = analysis.delay_blind_lmd([example], [int(example["av_delay_frames"])])
        assert known["delay_blind_lmd"] == pytest.approx(0.0, abs=1e-9)
        assert known["delay_blind_vs_static"] == pytest.approx(-1.0)
    # Blind to a delay of 0..4 frames, the median track is still far closer than a still
    # mouth (about -70% on `small`): the delay is not what limits a model's LMD.
    blind = analysis.delay_blind_lmd(examples, range(5))
    assert blind["windows"] > 20
    assert 0 < blind["delay_blind_lmd"] < 0.6 * blind["static_lmd"]


def test_every_bilabial_closes_the_lips(tiny):
    closures = [c for e in _examples(tiny["train"]) for c in analysis.bilabial_closures(e)]
    assert len(closures) > 10
    assert all(c["closed"] for c in closures), [c for c in closures if not c["closed"]]


def test_speakers_look_distinct(tiny):
    frames_by_speaker = {}
    for example in _examples(tiny["train"]):
        frames_by_speaker.setdefault(_text(example["speaker"]), []).extend(example["frames"][::10])
    result = analysis.speaker_identification(frames_by_speaker)
    # From one 16 x 16 thumbnail of one frame, 3x better than chance (0.25).
    assert result["identification_accuracy"] > 0.75, result
    assert result["between_within_distance_ratio"] > 1.5, result


def test_export_in_grid_layout_round_trips(tmp_path, tiny):
    manifest = export.export(TINY, tmp_path, splits=("test",), limit_per_split=1, num_workers=1)
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == 1
    row = rows[0]
    speaker_dir = tmp_path / row["speaker"]
    frames, fps, sound, rate = video_io.read_mp4(speaker_dir / f"{row['utterance']}.mp4")
    assert fps == 25 and rate == audio.SAMPLE_RATE
    assert len(frames) == int(row["frames"]) and frames.shape[1:] == (128, 128, 3)
    assert sound is not None and abs(len(sound) / rate - len(frames) / fps) < 0.1
    landmarks = np.load(speaker_dir / f"{row['utterance']}.landmarks.npy")
    assert landmarks.shape == (len(frames), 20, 2)
    align = (speaker_dir / "align" / f"{row['utterance']}.align").read_text().split("\n")
    words = [line.split()[2] for line in align if line and line.split()[2] != "sil"]
    assert " ".join(words) == row["text"].replace(" f ", " ef ") or len(words) >= 5
    # Cropping the decoded mp4 with the sidecar landmarks gives the dataset's crops up to
    # H.264 loss.
    crops, _ = crop.crop_video(frames, landmarks, smoothing_window=TINY.crop_smoothing)
    stored = next(e for e in _examples(tiny["test"]) if _text(e["utterance"]) == row["utterance"])
    difference = np.abs(crops.astype(float) - stored["frames"].astype(float)).mean()
    assert difference < 4.0


def test_preview_writes_clips_and_a_contact_sheet(tiny, tmp_path):
    written = preview.preview(tiny["test"], tmp_path, num_speakers=2)
    assert written["contact_sheet"].stat().st_size > 10_000
    assert len(written["clips"]) == 2
    frames, _, sound, _ = video_io.read_mp4(written["clips"][0])
    assert frames.shape[1:] == (256, 256, 3) and sound is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_train_speakers": 0}, "num_train_speakers"),
        ({"test_utterances_per_speaker": 1.5}, "test_utterances_per_speaker"),
        ({"min_delay_frames": 3, "max_delay_frames": 1}, "min_delay_frames"),
        ({"face_size": 32}, "face_size"),
        ({"train_utterances_per_speaker": 40_000}, "GRID grammar"),
    ],
)
def test_bad_corpus_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        corpus.plan_corpus(dataclasses.replace(TINY, **change))


def test_bad_builder_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_workers"):
        SyntheticLips(config="tiny", data_dir=tmp_path, num_workers=0)
    with pytest.raises(ValueError, match="huge"):
        SyntheticLips(config="huge", data_dir=tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "data_pipeline.synthetic_lips", "build", "--config=huge",
         f"--data_dir={tmp_path}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1 and "unknown corpus 'huge'" in done.stderr
    with pytest.raises(ValueError, match="splits"):
        export.export(TINY, tmp_path, splits=("training",))
