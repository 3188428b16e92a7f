"""TFDS builder `grid`: the GRID audiovisual sentence corpus (Cooke et al. 2006), from a
manual download, as 64 x 64 lip crops with log-mel audio (`lipjax.data.features`).

    python -m data_pipeline.build grid --manual_dir=DIR [--data_dir=DIR]
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import re

from data_pipeline import preprocess, real_corpus

logger = logging.getLogger(__name__)

_SPEAKER_DIR = re.compile(r"^(s\d{1,2})(?:[._-].*)?$")  # s1, s1_50kHz, s1.mpg_vcd


@dataclasses.dataclass(eq=False)
class GridConfig(real_corpus.RealCorpusConfig):
    """GRID's split: `test_speakers` are unseen; validation holds unseen sentences."""

    test_speakers: tuple[str, ...] = ("s1", "s2")
    validation_fraction: float = 0.1  # of the other speakers' utterances


def speaker_of(path: pathlib.Path, root: pathlib.Path) -> str | None:
    """The GRID speaker ("s12") of a file: its nearest folder named sN (or sN_...)."""
    for parent in path.relative_to(root).parents:
        match = _SPEAKER_DIR.match(parent.name)
        if match:
            return match.group(1)
    return None


def find_files(manual_dir: pathlib.Path) -> dict[tuple[str, str], dict[str, pathlib.Path]]:
    """{(speaker, utterance id): {"video"|"audio"|"align": path}} of a GRID tree."""
    kinds = {".wav": "audio", ".align": "align"}
    kinds.update(dict.fromkeys(preprocess.VIDEO_SUFFIXES, "video"))
    found: dict[tuple[str, str], dict[str, pathlib.Path]] = {}
    for path in real_corpus.files_by_suffix(manual_dir, kinds):
        speaker = speaker_of(path, manual_dir)
        if speaker is None:
            continue
        kind = kinds[path.suffix.lower()]
        files = found.setdefault((speaker, path.stem), {})
        if kind in files:
            raise ValueError(
                f"GRID: two {kind} files for speaker {speaker} utterance {path.stem}: "
                f"{files[kind]} and {path}"
            )
        files[kind] = path
    return found


def split_utterances(
    keys: list[tuple[str, str]], test_speakers: tuple[str, ...], validation_fraction: float
) -> tuple[dict[str, list[tuple[str, str]]], list[tuple[str, str]]]:
    """Table 1's split of (speaker, sentence id) pairs, and the test pairs left out.

    Test: the `test_speakers`, saying sentences no training utterance has (the others are
    left out). Validation: the other speakers saying held-out sentences, chosen by a hash
    of the sentence id (GRID ids name the sentence) until they hold `validation_fraction`
    of those speakers' utterances (at least one sentence). Train: the rest.
    """
    seen = [k for k in keys if k[0] not in test_speakers]
    held_out = real_corpus.hold_out([sentence for _, sentence in seen], validation_fraction)
    splits = {
        "train": [k for k in seen if k[1] not in held_out],
        "validation": [k for k in seen if k[1] in held_out],
    }
    train_sentences = {sentence for _, sentence in splits["train"]}
    unseen = [k for k in keys if k[0] in test_speakers]
    splits["test"] = [k for k in unseen if k[1] not in train_sentences]
    left_out = [k for k in unseen if k[1] in train_sentences]
    return splits, left_out


class Grid(real_corpus.RealCorpusBuilder):
    """GRID: 33 speakers with video x 1000 sentences, 3 s each at 25 fps."""

    BUILDER_CONFIGS = [  # noqa: RUF012 (TFDS API)
        GridConfig(
            name="default",
            description="Test speakers s1 and s2; 10% of the sentences for validation.",
        ),
    ]
    DEFAULT_CONFIG_NAME = "default"
    DESCRIPTION = """
GRID audiovisual sentence corpus (Cooke, Barker, Cunningham and Shao 2006): 34 speakers
(33 with video; s21 has none) x 1000 sentences such as "bin blue at f two now", 3 s each,
25 fps. Lip crops of 64 x 64 by lipjax's crop rule (docs/design.md, "Lip crops") from
dlib's 68 landmarks (detection every k frames, tracking between, the crop box smoothed
over time); audio at 44.1 kHz mono with
4 log-mel frames per video frame; words from the .align files. Splits as Table 1 of Chen
et al. (ECCV 2018): test = unseen speakers saying unseen sentences; validation = seen
speakers, unseen sentences. Examples are keyed by (speaker, utterance): ids repeat
across speakers.
"""
    HOMEPAGE = "https://spandh.dcs.shef.ac.uk/gridcorpus/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
Download GRID from https://spandh.dcs.shef.ac.uk/gridcorpus/ (video, audio and
alignments of every speaker you want) and unpack it under one folder, the manual_dir:

    manual_dir/s1/bbaf2n.mpg          video, 25 fps (any of .mpg .mp4 .mov .avi)
    manual_dir/s1/bbaf2n.wav          audio (any rate; resampled to 44.1 kHz). Without it
                                      the video's own audio track is used.
    manual_dir/s1/align/bbaf2n.align  word alignment (optional)

The speaker is the nearest folder named sN (or sN_something), so the official archives'
layouts (s1/video/mpg_6000/..., audio_50k/s1_50kHz/s1/..., alignments/s1/...) work as
unpacked. Then:

    python -m data_pipeline.build grid --manual_dir=DIR [--data_dir=DIR]
"""

    def list_splits(self, manual_dir: pathlib.Path) -> dict[str, list[preprocess.Utterance]]:
        config = self.builder_config
        found = find_files(manual_dir)
        with_video = sorted(k for k, files in found.items() if "video" in files)
        if not with_video:
            raise FileNotFoundError(
                f"GRID: no video under {manual_dir} in folders named sN. "
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        for key in sorted(set(found) - set(with_video)):
            logger.warning("GRID: %s %s has no video; not used", *key)
        speakers = {speaker for speaker, _ in with_video}
        missing = [s for s in config.test_speakers if s not in speakers]
        if len(missing) == len(config.test_speakers):
            raise ValueError(
                f"GRID: none of the test speakers {list(config.test_speakers)} is in "
                f"{manual_dir} (found {sorted(speakers)}); choose others in GridConfig"
            )
        if missing:
            logger.warning("GRID: test speakers %s are not in %s", missing, manual_dir)
        splits, left_out = split_utterances(
            with_video, tuple(config.test_speakers), config.validation_fraction
        )
        if left_out:
            logger.info(
                "GRID: %d test-speaker utterances left out: their sentences are in train",
                len(left_out),
            )

        def utterance(key: tuple[str, str]) -> preprocess.Utterance:
            files = found[key]
            speaker, name = key
            return preprocess.Utterance(
                key=f"{speaker}_{name}",
                speaker=speaker,
                utterance=name,
                video=str(files["video"]),
                audio=str(files["audio"]) if "audio" in files else None,
                transcript=str(files["align"]) if "align" in files else None,
                transcript_format="grid_align",
            )

        return {split: [utterance(k) for k in keys] for split, keys in splits.items()}
