"""TFDS builder `ldc`: the Audiovisual Database of Spoken American English (LDC2009V01,
Richie, Warburton and Carter 2009), from a manual download, as 64 x 64 lip crops with
log-mel audio (`lipjax.data.features`).

    python -m data_pipeline.build ldc --manual_dir=DIR [--data_dir=DIR]
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import re

from data_pipeline import preprocess, real_corpus

logger = logging.getLogger(__name__)

_TALKER_DIR = re.compile(r"^[FM]\d{2}$")


@dataclasses.dataclass(eq=False)
class LdcConfig(real_corpus.RealCorpusConfig):
    """LDC's split: `test_talkers` held out; validation holds unseen items."""

    test_talkers: tuple[str, ...] = ("F02", "M01")  # the authors' held-out talkers
    validation_fraction: float = 0.1  # of the items (words and sentences)


def find_items(manual_dir: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    """(talker, video) of every video under a folder named like a talker (F01, M07)."""
    found = []
    for video in real_corpus.files_by_suffix(manual_dir, preprocess.VIDEO_SUFFIXES):
        talker = next(
            (p.name for p in video.relative_to(manual_dir).parents if _TALKER_DIR.match(p.name)),
            None,
        )
        if talker is not None:
            found.append((talker, video))
    return found


def split_items(
    items: list[tuple[str, str]], test_talkers: tuple[str, ...], validation_fraction: float
) -> dict[str, list[tuple[str, str]]]:
    """Table 1's split of (talker, item) pairs.

    Every talker reads the same words and sentences, so unseen test sentences would empty
    the training set: test is every item of the held-out talkers (the paper's 1.2 h is
    about two talkers' share of 7 h). Validation: the other talkers saying items held
    out by a hash of the item name, `validation_fraction` of their videos (unseen by
    training); train: the rest.
    """
    seen = [k for k in items if k[0] not in test_talkers]
    held_out = real_corpus.hold_out([item for _, item in seen], validation_fraction)
    return {
        "train": [k for k in seen if k[1] not in held_out],
        "validation": [k for k in seen if k[1] in held_out],
        "test": [k for k in items if k[0] in test_talkers],
    }


class Ldc(real_corpus.RealCorpusBuilder):
    """LDC2009V01: 14 talkers, each reading 238 words and 166 sentences."""

    BUILDER_CONFIGS = [  # noqa: RUF012 (TFDS API)
        LdcConfig(
            name="default",
            description="Talkers F02 and M01 held out for test; 10% of items for validation.",
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = """
Audiovisual Database of Spoken American English (LDC2009V01): 14 talkers from the North
Midland dialect region, each reading 238 words and 166 sentences (CID Everyday Sentences,
NU-6, /hVd/ words, TIMIT sentences); audio 44.1 kHz. Lip crops of 64 x 64 by lipjax's crop
rule (docs/design.md, "Lip crops") from dlib's 68 landmarks; 4 log-mel frames per 25-fps
video frame. Split as Chen et al. (ECCV 2018): talkers F02 and M01 are the test set;
validation = the other talkers' items held out by a hash of the item name.
"""
    HOMEPAGE = "https://catalog.ldc.upenn.edu/LDC2009V01"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
LDC2009V01 is licensed by the Linguistic Data Consortium. Put one video file per item
(word or sentence) in a folder per talker, named as LDC names talkers (F01..F07, M01..M07),
anywhere under the manual_dir:

    manual_dir/.../F01/<item>.mp4   video at 25 fps (any of .mp4 .mov .avi .mpg)
    manual_dir/.../F01/<item>.wav   its audio (optional: else the video's own track)
    manual_dir/.../F01/<item>.txt   what is said (optional)

Videos at another frame rate are skipped and listed in the build report: convert them
first (ffmpeg -i in.mov -r 25 out.mp4). Then:

    python -m data_pipeline.build ldc --manual_dir=DIR [--data_dir=DIR]
"""

    def list_splits(self, manual_dir: pathlib.Path) -> dict[str, list[preprocess.Utterance]]:
        config = self.builder_config
        found = find_items(manual_dir)
        if not found:
            raise FileNotFoundError(
                f"LDC: no video in talker folders (F01..M07) under {manual_dir}. "
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        videos = {}
        for talker, video in found:
            if (talker, video.stem) in videos:
                raise ValueError(
                    f"LDC: two videos of item {video.stem} for talker {talker}: "
                    f"{videos[talker, video.stem]} and {video}"
                )
            videos[talker, video.stem] = video
        talkers = {talker for talker, _ in videos}
        missing = [t for t in config.test_talkers if t not in talkers]
        if missing:
            logger.warning("LDC: test talkers %s are not in %s", missing, manual_dir)
        splits = split_items(sorted(videos), tuple(config.test_talkers), config.validation_fraction)

        def utterance(key: tuple[str, str]) -> preprocess.Utterance:
            talker, item = key
            video = videos[key]
            wav, txt = video.with_suffix(".wav"), video.with_suffix(".txt")
            return preprocess.Utterance(
                key=f"{talker}_{item}",
                speaker=talker,
                utterance=item,
                video=str(video),
                audio=str(wav) if wav.is_file() else None,
                transcript=str(txt) if txt.is_file() else None,
                transcript_format="text",
            )

        return {split: [utterance(k) for k in keys] for split, keys in splits.items()}
