"""The `grid` builder: layout, Table 1 split, dummy build, match with synthetic_lips, Beam."""

import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_pipeline  # noqa: F401  (registers the builders)
from data_pipeline import preprocess
from data_pipeline.grid import Grid, GridConfig, grid
from data_pipeline.synthetic_lips import CONFIGS, corpus, export
from lipjax.data import audio, crop, pipeline, video_io

DUMMY = pathlib.Path(grid.__file__).parent / "dummy_data"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DUMMY_SPLITS = {"train": 4, "validation": 1, "test": 2}
TINY = CONFIGS["tiny"]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _build(data_dir, manual_dir, config=None, **download):
    builder = Grid(config=config, data_dir=data_dir, num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir), **download)
    )
    return builder


def _examples(builder, split):
    source = builder.as_data_source(split=split)
    return [source[i] for i in range(len(source))]


def _dataset_name(builder) -> str:
    return f"{builder.name}/{builder.builder_config.name}"


@pytest.fixture(scope="module")
def dummy(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("tfds"), DUMMY)


def test_split_is_table_1():
    keys = [(f"s{s}", f"sent{u}") for s in range(1, 7) for u in range(s, s + 20)]
    splits, left_out = grid.split_utterances(keys, ("s1", "s2"), 0.1)
    assert {s for s, _ in splits["test"]} <= {"s1", "s2"}
    assert not {s for s, _ in splits["train"] + splits["validation"]} & {"s1", "s2"}
    train_sentences = {u for _, u in splits["train"]}
    assert not train_sentences & {u for _, u in splits["validation"]}  # unseen sentences
    assert not train_sentences & {u for _, u in splits["test"]}
    assert all(u in train_sentences for s, u in left_out)
    assert len(splits["test"]) + len(left_out) == 40
    seen = len(splits["train"]) + len(splits["validation"])
    assert 0.1 <= len(splits["validation"]) / seen < 0.2
    assert splits == grid.split_utterances(keys[::-1], ("s1", "s2"), 0.1)[0] or sorted(
        splits["validation"]
    ) == sorted(grid.split_utterances(keys[::-1], ("s1", "s2"), 0.1)[0]["validation"])


def test_official_layouts_are_found(tmp_path):
    for relative in (
        "s1/video/mpg_6000/bbaf2n.mpg",
        "audio_50k/s1_50kHz/s1/bbaf2n.wav",
        "alignments/s1/bbaf2n.align",
        "s12.mpg_vcd/s12/bbaf2n.mpg",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    found = grid.find_files(tmp_path)
    assert set(found) == {("s1", "bbaf2n"), ("s12", "bbaf2n")}  # ids repeat across speakers
    assert set(found["s1", "bbaf2n"]) == {"video", "audio", "align"}
    (tmp_path / "s1" / "bbaf2n.mp4").write_bytes(b"x")
    with pytest.raises(ValueError, match="two video files for speaker s1 utterance bbaf2n"):
        grid.find_files(tmp_path)


def test_dummy_build_splits_and_features(dummy):
    assert {s: i.num_examples for s, i in dummy.info.splits.items()} == DUMMY_SPLITS
    speakers = {s: {_text(e["speaker"]) for e in _examples(dummy, s)} for s in DUMMY_SPLITS}
    assert speakers["test"] == {"s1"}  # a default test speaker; s2 has no dummy utterance
    assert not speakers["test"] & (speakers["train"] | speakers["validation"])
    sentences = {s: {_text(e["utterance"]) for e in _examples(dummy, s)} for s in DUMMY_SPLITS}
    assert not sentences["train"] & (sentences["validation"] | sentences["test"])
    for example in _examples(dummy, "train"):
        n = len(example["frames"])
        assert example["frames"].shape == (n, 64, 64, 3) and example["frames"].dtype == np.uint8
        assert example["log_mel"].shape == (4 * n, 128)
        assert example["landmarks"].shape == (n, 20, 2)
        assert example["waveform"].shape == (n * audio.SAMPLES_PER_VIDEO_FRAME,)
        assert len(_text(example["text"]).split()) == len(example["words"]["word"]) > 0
    report = preprocess.read_report(dummy.data_dir)
    assert {s: r["examples"] for s, r in report.items()} == DUMMY_SPLITS
    # The train split's log-mel statistics, stored with the build for the trainer.
    log_mels = np.concatenate([e["log_mel"] for e in _examples(dummy, "train")])
    stats = pipeline.dataset_log_mel_stats(_dataset_name(dummy), dummy.data_dir_root)
    np.testing.assert_allclose(
        [stats.mean, stats.std], [log_mels.mean(dtype=np.float64), log_mels.std(dtype=np.float64)],
        rtol=1e-9,
    )  # fmt: skip
    assert dummy.info.metadata[audio.LOG_MEL_STATS_METADATA_KEY]["count"] == log_mels.size
    assert all(r["landmark_sources"] == {"sidecar": r["examples"]} for r in report.values())


def test_stored_boxes_invert_the_crops(dummy):
    """crop_box and source_video say where every crop came from: cutting the source frame
    at the box gives the stored crop, and pasting it back gives the frame."""
    for split in DUMMY_SPLITS:
        for example in _examples(dummy, split):
            video = DUMMY / _text(example["source_video"])
            assert video.is_file() and video.parent.name == _text(example["speaker"])
            frames, _, _ = preprocess.decode_video(video)
            boxes = example["crop_box"]
            assert boxes.shape == (len(frames), 3) and boxes.dtype == np.float32
            for t in (0, len(frames) - 1):
                centre, half_size = boxes[t, :2], float(boxes[t, 2])
                recut = crop.crop_frame(frames[t], centre, half_size)
                assert np.abs(recut.astype(int) - example["frames"][t]).max() <= 1
                pasted = crop.paste_frame(frames[t], example["frames"][t], centre, half_size)
                x0, y0 = np.maximum(np.ceil(centre - half_size - 0.5), 0).astype(int)
                x1, y1 = np.floor(centre + half_size - 0.5).astype(int) + 1
                error = np.abs(pasted.astype(float) - frames[t])[y0:y1, x0:x1]
                # Measured 0.7 to 3.2 grey levels: resampling the crop twice blurs edges.
                assert error.size > 40 * 40 and error.mean() < 4.0
            # The stored crop landmarks are the sidecar's frame landmarks seen through the box.
            mouth = np.load(video.with_name(video.stem + ".landmarks.npy"))
            mouth = mouth[:, 48:68] if mouth.shape[1] == 68 else mouth
            expected = crop.landmarks_to_crop(mouth, boxes[:, :2], boxes[:, 2])
            np.testing.assert_allclose(example["landmarks"], expected, atol=1e-3)


def test_input_pipeline_reads_the_build(dummy):
    index = pipeline.window_index("grid", "train", str(dummy.data_dir_root))
    assert index.num_windows == 4 * 2  # 24-frame clips: windows at frames 0 and 8
    assert set(index.speakers) <= {"s3", "s4", "s5", "s6"}


def test_export_built_by_grid_matches_synthetic_lips(tmp_path):
    """Real preprocessing (mp4 + wav + sidecar landmarks) against synthetic_lips's examples.

    Tolerances: crops differ by H.264 (CRF 18) only: mean absolute difference under 4
    grey levels of 255 and PSNR above 30 dB; landmarks to 1e-3 px (the same points and
    crop rule); waveform to 1e-4 (16-bit PCM); log-mel to 0.5 dB mean.
    """
    export.export(TINY, tmp_path / "manual", limit_per_split={"train": 2, "test": 1},
                  splits=("train", "test"), num_workers=1)  # fmt: skip
    config = GridConfig(name="synthetic_tiny", test_speakers=("s5", "s6"))
    builder = _build(tmp_path / "tfds", tmp_path / "manual", config)
    plans = {p.key: p for split in corpus.SPLITS for p in corpus.plan_corpus(TINY)[split]}
    compared = 0
    for split in corpus.SPLITS:
        for example in _examples(builder, split):
            key = f"{_text(example['speaker'])}_{_text(example['utterance'])}"
            _, reference = corpus.make_example(plans[key], TINY)
            frames, expected = example["frames"].astype(float), reference["frames"].astype(float)
            assert frames.shape == expected.shape
            difference = np.abs(frames - expected)
            psnr = 10 * np.log10(255**2 / np.mean(difference**2))
            assert difference.mean() < 4.0 and psnr > 30.0, (difference.mean(), psnr)
            np.testing.assert_allclose(example["landmarks"], reference["landmarks"], atol=1e-3)
            np.testing.assert_allclose(example["waveform"], reference["waveform"], atol=1e-4)
            assert np.mean(np.abs(example["log_mel"] - reference["log_mel"])) < 0.5
            compared += 1
    assert compared == 3


def test_bad_files_are_counted_and_listed_not_cropped(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY, manual)
    (manual / "s3" / "empty0a.mpg").write_bytes(b"")
    (manual / "s3" / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    frames, _, _, _ = video_io.read_mp4(manual / "s3" / "bbwd1s.mp4")
    video_io.write_mp4(manual / "s4" / "nosound.mp4", frames, 25)  # no audio, no .wav
    shutil.copy(manual / "s3" / "bbwd1s.landmarks.npy", manual / "s4" / "nosound.landmarks.npy")
    video_io.write_mp4(manual / "s4" / "noface.mp4", frames, 25, np.zeros(42_336), 44_100)
    builder = _build(tmp_path / "tfds", manual)
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == DUMMY_SPLITS
    report = preprocess.read_report(builder.data_dir)
    reasons = {}
    for summary in report.values():
        for video, message in summary["skipped_files"]:
            reasons[pathlib.Path(video).name] = message
    assert set(reasons) == {"empty0a.mpg", "broken.mp4", "nosound.mp4", "noface.mp4"}
    assert "the file is empty" in reasons["empty0a.mpg"]
    assert "cannot decode" in reasons["broken.mp4"]
    assert "no audio track" in reasons["nosound.mp4"]
    assert "no face found in frame 0" in reasons["noface.mp4"]
    assert sum(r["skipped"] for r in report.values()) == 4


def test_clear_errors_for_a_wrong_manual_dir(tmp_path):
    with pytest.raises(AssertionError, match="does not exist or is empty"):  # TFDS's check
        _build(tmp_path / "tfds", tmp_path / "nowhere")
    (tmp_path / "other" / "s1").mkdir(parents=True)
    (tmp_path / "other" / "s1" / "notes.txt").write_text("no videos here")
    with pytest.raises(FileNotFoundError, match="no video under"):
        _build(tmp_path / "tfds", tmp_path / "other")
    with pytest.raises(ValueError, match="none of the test speakers"):
        _build(tmp_path / "tfds", DUMMY, GridConfig(name="x", test_speakers=("s30",)))
    with pytest.raises(ValueError, match="smoothing_window"):
        Grid(config=GridConfig(name="y", smoothing_window=0), data_dir=tmp_path)


def test_beam_build_equals_the_local_build(dummy, tmp_path):
    beam = pytest.importorskip("apache_beam")
    options = beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
    built = _build(tmp_path, DUMMY, beam_options=options)
    assert {s: i.num_examples for s, i in built.info.splits.items()} == DUMMY_SPLITS
    for split in DUMMY_SPLITS:
        local = {_text(e["speaker"]) + _text(e["utterance"]): e for e in _examples(dummy, split)}
        for example in _examples(built, split):
            reference = local[_text(example["speaker"]) + _text(example["utterance"])]
            for name in ("frames", "landmarks", "log_mel", "waveform"):
                np.testing.assert_array_equal(example[name], reference[name])
    report = preprocess.read_report(built.data_dir)
    assert {s: r["examples"] for s, r in report.items()} == DUMMY_SPLITS
    # Beam builds store no log-mel statistics: they are computed from the train split.
    assert audio.LOG_MEL_STATS_METADATA_KEY not in built.info.metadata
    stats = [
        pipeline.dataset_log_mel_stats(_dataset_name(b), b.data_dir_root) for b in (built, dummy)
    ]
    np.testing.assert_allclose(
        [stats[0].mean, stats[0].std], [stats[1].mean, stats[1].std], rtol=1e-9
    )


def test_build_command_line(tmp_path):
    command = [sys.executable, "-m", "data_pipeline.build", "grid", f"--manual_dir={DUMMY}"]
    done = subprocess.run(
        [*command, f"--data_dir={tmp_path}", "--num_workers=1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout
    assert "train: 4 utterances" in printed and '"skipped": 0' in printed
    version = str(Grid.VERSION)
    assert (tmp_path / "grid" / "default" / version / "build_report" / "train.jsonl").is_file()
