"""The `ldc` builder: talker folders, held-out talkers F02 and M01, the dummy build."""

import pathlib

import pytest
import tensorflow_datasets as tfds

import data_pipeline  # noqa: F401  (registers the builders)
from data_pipeline.ldc import Ldc, ldc

DUMMY = pathlib.Path(ldc.__file__).parent / "dummy_data"
DUMMY_SPLITS = {"train": 4, "validation": 1, "test": 2}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_split_holds_out_talkers_and_items():
    talkers = ["F01", "F02", "F03", "M01", "M02", "M03"]
    items = [(t, f"item{i:03d}") for t in talkers for i in range(100)]
    splits = ldc.split_items(items, ("F02", "M01"), 0.1)
    assert {t for t, _ in splits["test"]} == {"F02", "M01"} and len(splits["test"]) == 200
    assert not {t for t, _ in splits["train"] + splits["validation"]} & {"F02", "M01"}
    train_items = {i for _, i in splits["train"]}
    validation_items = {i for _, i in splits["validation"]}
    assert not train_items & validation_items  # validation: unseen items
    assert len(splits["validation"]) == 4 * len(validation_items) == 40


def test_talker_folders_anywhere(tmp_path):
    for relative in ("disc1/F01/cid_a1.mov", "disc2/video/M07/w_bead.mp4", "docs/intro.mp4"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    assert [(t, v.name) for t, v in ldc.find_items(tmp_path)] == [
        ("F01", "cid_a1.mov"), ("M07", "w_bead.mp4"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def dummy(tmp_path_factory):
    builder = Ldc(data_dir=tmp_path_factory.mktemp("tfds"), num_workers=1)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(DUMMY))
    )
    return builder


def test_dummy_build(dummy):
    assert {s: i.num_examples for s, i in dummy.info.splits.items()} == DUMMY_SPLITS
    test = dummy.as_data_source(split="test")
    assert {_text(test[i]["speaker"]) for i in range(len(test))} == {"F02"}
    train = dummy.as_data_source(split="train")
    for i in range(len(train)):
        example = train[i]
        assert _text(example["speaker"]) not in ("F02", "M01")
        assert len(_text(example["text"]).split()) == 6  # the .txt beside the video
        assert example["frames"].shape[1:] == (64, 64, 3)
        assert example["crop_box"].shape == (len(example["frames"]), 3)
        assert (DUMMY / _text(example["source_video"])).is_file()
        assert example["log_mel"].shape == (4 * len(example["frames"]), 128)
