"""TFDS builder `lrw`: Lip Reading in the Wild (Chung and Zisserman 2016), from a manual
download, as 64 x 64 lip crops with log-mel audio (`lipjax.data.features`).

    python -m data_pipeline.build lrw --manual_dir=DIR [--data_dir=DIR]
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

from data_pipeline import preprocess, real_corpus

logger = logging.getLogger(__name__)

SPLIT_DIRS = {"train": "train", "val": "validation", "test": "test"}
UNKNOWN_SPEAKER = "unknown"  # LRW does not name its speakers


@dataclasses.dataclass(eq=False)
class LrwConfig(real_corpus.RealCorpusConfig):
    """LRW's own split: its train/val/test folders."""


def list_splits(manual_dir: pathlib.Path) -> dict[str, list[preprocess.Utterance]]:
    """The clips of `WORD/{train,val,test}/WORD_00001.mp4` anywhere under `manual_dir`."""
    splits: dict[str, list[preprocess.Utterance]] = {split: [] for split in real_corpus.SPLITS}
    seen: dict[tuple[str, str], pathlib.Path] = {}
    for video in real_corpus.files_by_suffix(manual_dir, [".mp4"]):
        split = SPLIT_DIRS.get(video.parent.name)
        if split is None:
            continue
        word = video.parent.parent.name
        if (split, video.stem) in seen:
            raise ValueError(
                f"LRW: two clips named {video.stem} in split {split}: "
                f"{seen[split, video.stem]} and {video}"
            )
        seen[split, video.stem] = video
        transcript = video.with_suffix(".txt")
        splits[split].append(
            preprocess.Utterance(
                key=video.stem,  # WORD_00001: unique within a split
                speaker=UNKNOWN_SPEAKER,
                utterance=f"{word}/{video.stem}",
                video=str(video),
                audio=None,  # LRW's sound is in the mp4
                transcript=str(transcript) if transcript.is_file() else None,
                transcript_format="lrw",
            )
        )
    return splits


class Lrw(real_corpus.RealCorpusBuilder):
    """LRW: 500 words, hundreds of speakers, 29-frame clips from BBC television."""

    BUILDER_CONFIGS = [  # noqa: RUF012 (TFDS API)
        LrwConfig(name="default", description="LRW's own train / val / test split."),
    ]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = """
Lip Reading in the Wild (Chung and Zisserman, ACCV 2016): 500 English words, up to 1000
training clips each, from BBC television; each clip is 29 frames (1.16 s) at 25 fps with
the word in its middle. Lip crops of 64 x 64 by lipjax's crop rule (docs/design.md, "Lip
crops") from dlib's 68 landmarks; audio from the mp4, resampled to 44.1 kHz mono, 4 log-mel
frames per video frame. Splits are LRW's folders (val -> validation). LRW does not name
speakers: `speaker` is "unknown" and `utterance` is WORD/WORD_00001.
"""
    HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrw1.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
LRW needs a licence from the BBC (see the homepage). Unpack lipread_mp4 under the
manual_dir:

    manual_dir/lipread_mp4/ABOUT/train/ABOUT_00001.mp4   video with sound, 25 fps
    manual_dir/lipread_mp4/ABOUT/train/ABOUT_00001.txt   "Text:  ABOUT", ..., "Duration: ..."
    manual_dir/lipread_mp4/ABOUT/{val,test}/...

Then:

    python -m data_pipeline.build lrw --manual_dir=DIR [--data_dir=DIR]
"""

    def list_splits(self, manual_dir: pathlib.Path) -> dict[str, list[preprocess.Utterance]]:
        splits = list_splits(manual_dir)
        if not any(splits.values()):
            raise FileNotFoundError(
                f"LRW: no WORD/{{train,val,test}}/*.mp4 under {manual_dir}. "
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return splits
