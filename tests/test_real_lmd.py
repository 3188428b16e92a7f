"""The paper's LMD on real video: crops pasted back into their frames, dlib on both."""

import numpy as np
import pytest
import scipy.ndimage
import skimage.data

from data_pipeline import preprocess
from lipjax.data import audio, crop, pipeline, video_io
from lipjax.eval import evaluation, real_lmd

NUM_FRAMES = 16  # one evaluation window


def _box_pixels(centre, half_size):
    """The slices of the frame pixels whose centres lie in the crop square."""
    x0, x1 = int(np.ceil(centre[0] - half_size - 0.5)), int(np.floor(centre[0] + half_size - 0.5))
    y0, y1 = int(np.ceil(centre[1] - half_size - 0.5)), int(np.floor(centre[1] + half_size - 0.5))
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def test_paste_puts_the_crop_back_where_it_came_from():
    photo = skimage.data.astronaut()
    centre, half_size = np.array([222.3, 145.6]), 33.4  # her mouth; a box off the pixel grid
    lips = crop.crop_frame(photo, centre, half_size)
    holed = photo.copy()
    holed[100:190, 180:270] = 0
    pasted = crop.paste_frame(holed, lips, centre, half_size)
    rows, cols = _box_pixels(centre, half_size)
    error = np.abs(pasted[rows, cols].astype(float) - photo[rows, cols])
    assert error.mean() < 3.0  # measured 2.49 grey levels: two bilinear resamplings
    outside = np.ones(photo.shape[:2], bool)
    outside[rows, cols] = False
    np.testing.assert_array_equal(pasted[outside], holed[outside])
    # One pixel off already costs more than the round trip.
    inner = (slice(rows.start + 3, rows.stop - 3), slice(cols.start + 3, cols.stop - 3))
    shifted = crop.paste_frame(holed, lips, centre + np.array([1.0, 0.0]), half_size)
    assert np.abs(shifted[inner].astype(float) - photo[inner]).mean() > 2 * error.mean()
    # A feathered paste keeps the middle and blends the edge with the frame.
    feathered = crop.paste_frame(holed, lips, centre, half_size, feather=4.0)
    middle = (slice(rows.start + 6, rows.stop - 6), slice(cols.start + 6, cols.stop - 6))
    np.testing.assert_array_equal(feathered[middle], pasted[middle])
    edge = (rows.start, cols.start + 30)
    assert 0 < feathered[edge].mean() < pasted[edge].mean()


@pytest.fixture(scope="module")
def talking_astronaut(tmp_path_factory):
    """manual_dir with a 16-frame video of the astronaut whose lower lip moves down and up
    by up to 16 px, and its example as a builder stores it (dlib landmarks, crop boxes)."""
    photo = skimage.data.astronaut().astype(np.float64)
    ys, xs = np.mgrid[0:512, 0:512].astype(np.float64)
    bump = np.exp(-0.5 * ((xs - 222) / 30) ** 2 - 0.5 * ((ys - 158) / 12) ** 2)
    frames = []
    for t in range(NUM_FRAMES):
        drop = 16.0 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 8))
        warped = [
            scipy.ndimage.map_coordinates(photo[..., c], (ys - drop * bump, xs), order=1)
            for c in range(3)
        ]
        frames.append(np.clip(np.rint(np.stack(warped, axis=-1)), 0, 255).astype(np.uint8))
    manual_dir = tmp_path_factory.mktemp("manual")
    (manual_dir / "nasa").mkdir()
    video = manual_dir / "nasa" / "astronaut.mp4"
    sound = np.zeros(NUM_FRAMES * audio.SAMPLES_PER_VIDEO_FRAME, np.float32)
    video_io.write_mp4(video, np.stack(frames), 25, sound, audio.SAMPLE_RATE)
    utterance = preprocess.Utterance(
        "k", "nasa", "astronaut", str(video), source="nasa/astronaut.mp4"
    )
    outcome = preprocess.process(utterance, preprocess.PreprocessOptions())
    assert outcome.landmark_source == "dlib" and outcome.example is not None
    return manual_dir, outcome.example


def test_dlib_lmd_of_real_and_static_crops(talking_astronaut):
    manual_dir, example = talking_astronaut
    assert example["source_video"] == "nasa/astronaut.mp4"
    assert example["crop_box"].shape == (NUM_FRAMES, 3)
    scorer = real_lmd.PastedLmd(manual_dir)
    frames = range(NUM_FRAMES)
    real = scorer.clip_lmd("nasa/astronaut.mp4", frames, example["crop_box"], example["frames"])
    static_crops = np.repeat(example["frames"][:1], NUM_FRAMES, axis=0)
    static = scorer.clip_lmd("nasa/astronaut.mp4", frames, example["crop_box"], static_crops)
    assert real.scored == static.scored == NUM_FRAMES
    assert real.no_face_real == real.no_face_generated == 0
    # Measured: real 0.47 px (resampling the crop twice), static 1.52 px.
    assert real.lmd < 0.8
    assert static.lmd > 1.0 and static.lmd > 2.5 * real.lmd
    assert static.lmd_crop > static.lmd  # r < 32 here: crop pixels are smaller


def test_evaluation_scores_pasted_crops_and_counts_faceless_frames(talking_astronaut, tmp_path):
    manual_dir, example = talking_astronaut
    # A second utterance whose video has no face: its frames are counted, not scored.
    noise = np.random.default_rng(0).integers(0, 255, (NUM_FRAMES, 96, 96, 3), np.uint8)
    video_io.write_mp4(manual_dir / "noise.mp4", noise, 25)
    faceless = {**example, "source_video": "noise.mp4",
                "crop_box": np.tile(np.float32([48, 48, 20]), (NUM_FRAMES, 1))}  # fmt: skip
    clips = pipeline.normalize_video(example["frames"])[None]
    batch = {
        "video": np.concatenate([clips, clips]),
        "identity": np.concatenate([clips, clips])[:, 0],
        "audio": np.zeros((2, 64, 128, 1), np.float32),
        "utterance_index": np.array([0, 1]),
        "start_frame": np.zeros(2, np.int32),
        "speaker_id": np.zeros(2, np.int32),
    }
    scorer = real_lmd.RealLmdScorer(manual_dir, [example, faceless])
    result = evaluation.evaluate(
        lambda b: b["video"], [(batch, np.ones(2, bool))], None, sharpness=False, frame_lmd=scorer
    )
    lmd = result.per_clip["model_lmd"]
    assert lmd[0] < 0.8 and np.isnan(lmd[1])
    assert result.per_clip["static_lmd"][0] > 1.0
    assert result.model["lmd"] == pytest.approx(lmd[0])  # the faceless clip is left out
    assert "lmd" not in result.ground_truth
    counts = scorer.counts["model"]
    assert counts["no_face_real"] == NUM_FRAMES and counts["scored_frames"] == NUM_FRAMES
    assert counts["clips_without_lmd"] == 1
    assert "16 of 32 frames scored" in scorer.summary()
    with pytest.raises(FileNotFoundError, match="manual_dir"):
        real_lmd.RealLmdScorer(tmp_path, [example])
