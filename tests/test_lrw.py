"""The `lrw` builder: LRW's folders as splits, the sound from the mp4, the dummy build."""

import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import data_pipeline  # noqa: F401  (registers the builders)
from data_pipeline import preprocess
from data_pipeline.lrw import Lrw, lrw

DUMMY = pathlib.Path(lrw.__file__).parent / "dummy_data"
DUMMY_SPLITS = {"train": 3, "validation": 1, "test": 2}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="module")
def dummy(tmp_path_factory):
    builder = Lrw(data_dir=tmp_path_factory.mktemp("tfds"), num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(DUMMY))
    )
    return builder


def test_folders_are_the_splits(tmp_path):
    for folder, name in (("train", "ABOUT_00001"), ("val", "ABOUT_00001"),
                         ("test", "ABOUT_00001"), ("other", "ABOUT_00002")):  # fmt: skip
        path = tmp_path / "lipread_mp4" / "ABOUT" / folder / f"{name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    splits = lrw.list_splits(tmp_path)
    assert {s: [u.key for u in us] for s, us in splits.items()} == {
        "train": ["ABOUT_00001"], "validation": ["ABOUT_00001"], "test": ["ABOUT_00001"],
    }  # fmt: skip
    assert splits["train"][0].audio is None  # the sound is the mp4's own track


def test_dummy_build(dummy):
    assert {s: i.num_examples for s, i in dummy.info.splits.items()} == DUMMY_SPLITS
    source = dummy.as_data_source(split="train")
    for i in range(len(source)):
        example = source[i]
        word, clip = _text(example["utterance"]).split("/")
        assert clip.startswith(word + "_") and _text(example["text"]) == word
        assert example["frames"].shape == (29, 64, 64, 3)  # LRW clips: 29 frames
        assert example["crop_box"].shape == (29, 3)  # where each crop came from
        assert (DUMMY / _text(example["source_video"])).is_file()
        assert example["log_mel"].shape == (116, 128)
        (start,), (end,) = example["words"]["start"], example["words"]["end"]
        assert start < 29 / 25 / 2 < end  # the word is in the middle of the clip
        assert np.abs(example["waveform"]).max() > 0.01  # AAC sound decoded
    report = preprocess.read_report(dummy.data_dir)
    assert {s: r["examples"] for s, r in report.items()} == DUMMY_SPLITS
