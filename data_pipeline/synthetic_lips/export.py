"""Write the synthetic corpus as files in the layout of a real corpus (GRID, LRW or
LDC), so the preprocessing and builders of real corpora can be tested end to end on data
with known ground truth.

layout "grid":
    OUT/sN/<utt>.mp4             full lower-face video, H.264 with AAC sound, 25 fps
    OUT/sN/<utt>.wav             16-bit PCM, 44.1 kHz mono
    OUT/sN/align/<utt>.align     GRID word alignment: "start end word", 1/1000-frame units
layout "lrw" (the word directory is the sentence's first word):
    OUT/lipread_mp4/WORD/{train,val,test}/WORD_00001.mp4   video with its sound
    OUT/lipread_mp4/WORD/{train,val,test}/WORD_00001.txt   "Text:  WORD", "Duration: ..."
layout "ldc" (talkers named like LDC2009V01's; the test speakers become F02 and M01):
    OUT/<talker>/<utt>.mp4, <utt>.wav, <utt>.txt (the sentence)
every layout:
    <video stem>.landmarks.npy   sidecar: (T, 20, 2) float32 mouth points 48..67, frame px
    OUT/manifest.csv             split, speaker, utterance, text, av_delay_frames, frames,
                                 path (the video, relative to OUT)

dlib cannot find landmarks on a rendered face, so the sidecar stands in for it.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
from collections.abc import Iterable

import numpy as np
import scipy.io.wavfile
from tqdm import tqdm

from data_pipeline.synthetic_lips import corpus
from lipjax.data import audio, video_io, workers

ALIGN_UNITS_PER_SECOND = 25 * 1000  # GRID: 1/1000 of a 25-fps frame
LAYOUTS = ("grid", "lrw", "ldc")
LRW_SPLIT_DIRS = {"train": "train", "validation": "val", "test": "test"}
# LDC2009V01 talker names: train speakers, then the two the paper holds out for test.
LDC_TRAIN_TALKERS = ("F01", "M02", "F03", "M03", "F04", "M04", "F05", "M05", "F06", "M06")
LDC_TEST_TALKERS = ("F02", "M01")


def align_lines(words: list[tuple[str, float, float]], duration: float) -> list[str]:
    """GRID .align lines: silence before, between and after the words."""
    units = lambda seconds: round(seconds * ALIGN_UNITS_PER_SECOND)  # noqa: E731
    lines, cursor = [], 0
    for word, start, end in words:
        start_u, end_u = max(units(start), cursor), max(units(end), units(start))
        if start_u > cursor:
            lines.append(f"{cursor} {start_u} sil")
        lines.append(f"{start_u} {end_u} {word}")
        cursor = end_u
    total = units(duration)
    if total > cursor:
        lines.append(f"{cursor} {total} sil")
    return lines


def trim(
    rendered: corpus.RenderedUtterance, max_frames: int, centre: float | None = None
) -> corpus.RenderedUtterance:
    """The `max_frames` frames around `centre` seconds (default: the middle), with the
    audio, phonemes and words of the same span."""
    total = rendered.num_frames
    if max_frames >= total:
        return rendered
    centre = total / 50.0 if centre is None else centre
    start = min(max(round(centre * 25 - max_frames / 2), 0), total - max_frames)
    stop, offset = start + max_frames, start / 25.0
    duration = max_frames / 25.0

    def events(items):
        return [
            (label, max(begin - offset, 0.0), min(end - offset, duration))
            for label, begin, end in items
            if end > offset and begin < offset + duration
        ]

    samples = audio.SAMPLES_PER_VIDEO_FRAME
    return dataclasses.replace(
        rendered,
        faces=rendered.faces[start:stop],
        face_landmarks=rendered.face_landmarks[start:stop],
        waveform=rendered.waveform[start * samples : stop * samples],
        phonemes=events(rendered.phonemes),
        words=events(rendered.words),
        articulation=rendered.articulation[start:stop],
    )


def _write_media(rendered: corpus.RenderedUtterance, stem: pathlib.Path, wav: bool) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    video_io.write_mp4(
        stem.with_suffix(".mp4"), rendered.faces, 25, rendered.waveform, audio.SAMPLE_RATE
    )
    if wav:
        pcm = np.round(np.clip(rendered.waveform, -1, 1) * 32767).astype(np.int16)
        scipy.io.wavfile.write(stem.with_suffix(".wav"), audio.SAMPLE_RATE, pcm)
    np.save(
        stem.with_name(stem.name + ".landmarks.npy"), rendered.face_landmarks.astype(np.float32)
    )


def write_utterance(
    rendered: corpus.RenderedUtterance,
    out_dir: pathlib.Path,
    layout: str = "grid",
    relative_stem: str | None = None,
    speaker: str | None = None,
) -> dict:
    """Writes one utterance's files at `out_dir/relative_stem` (default: GRID's
    `sN/<utt>`); returns its manifest row."""
    plan = rendered.plan
    speaker = speaker or plan.speaker.speaker_id
    name = plan.sentence.utterance_id
    relative_stem = relative_stem or f"{speaker}/{name}"
    stem = pathlib.Path(out_dir) / relative_stem
    _write_media(rendered, stem, wav=layout != "lrw")
    duration = len(rendered.waveform) / audio.SAMPLE_RATE
    if layout == "grid":
        (stem.parent / "align").mkdir(parents=True, exist_ok=True)
        (stem.parent / "align" / f"{stem.name}.align").write_text(
            "\n".join(align_lines(rendered.words, duration)) + "\n"
        )
    elif layout == "lrw":
        word, begin, end = rendered.words[0] if rendered.words else (stem.parent.parent.name, 0, 0)
        stem.with_suffix(".txt").write_text(
            f"Text:  {word.upper()}\nConf:  1.0\n\nDuration: {end - begin:.2f} seconds\n"
        )
    else:
        stem.with_suffix(".txt").write_text(plan.sentence.text + "\n")
    return {
        "split": plan.split,
        "speaker": speaker,
        "utterance": name,
        "text": plan.sentence.text,
        "av_delay_frames": plan.delay_frames,
        "frames": rendered.num_frames,
        "path": f"{relative_stem}.mp4",
    }


def _export_one(args) -> dict:
    plan, config, out_dir, layout, relative_stem, speaker, max_frames = args
    rendered = corpus.render_utterance(plan, config)
    if max_frames is not None:
        # LRW clips are centred on their word; the others keep the middle.
        first_word = rendered.words[0] if layout == "lrw" and rendered.words else None
        centre = (first_word[1] + first_word[2]) / 2 if first_word else None
        rendered = trim(rendered, max_frames, centre)
    return write_utterance(rendered, pathlib.Path(out_dir), layout, relative_stem, speaker)


def _targets(
    plans: list[corpus.UtterancePlan], layout: str, speaker_names: dict[str, str]
) -> list[tuple[str, str]]:
    """(speaker name, path stem relative to the output) of each plan, in the layout."""
    targets, counts = [], {}
    for plan in plans:
        speaker = speaker_names.get(plan.speaker.speaker_id, plan.speaker.speaker_id)
        name = plan.sentence.utterance_id
        if layout == "lrw":
            word = plan.sentence.words[0].upper()
            split_dir = LRW_SPLIT_DIRS[plan.split]
            counts[word, split_dir] = counts.get((word, split_dir), 0) + 1
            stem = f"lipread_mp4/{word}/{split_dir}/{word}_{counts[word, split_dir]:05d}"
        else:
            stem = f"{speaker}/{name}"
        targets.append((speaker, stem))
    return targets


def default_speaker_names(config: corpus.CorpusConfig, layout: str) -> dict[str, str]:
    """LDC talker names for the synthetic speakers (held-out test speakers F02, M01);
    the synthetic names (s1, s2, ...) for GRID and LRW."""
    if layout != "ldc":
        return {}
    train = [f"s{i + 1}" for i in range(config.num_train_speakers)]
    test = [f"s{i + 1 + config.num_train_speakers}" for i in range(config.num_test_speakers)]
    if len(train) > len(LDC_TRAIN_TALKERS) or len(test) > len(LDC_TEST_TALKERS):
        raise ValueError(
            f"layout ldc: at most {len(LDC_TRAIN_TALKERS)} train and {len(LDC_TEST_TALKERS)} "
            f"test speakers, got {len(train)} and {len(test)}"
        )
    return dict(zip(train + test, LDC_TRAIN_TALKERS[: len(train)] + LDC_TEST_TALKERS, strict=False))


def export(
    config: corpus.CorpusConfig,
    out_dir: str | os.PathLike,
    splits: Iterable[str] = corpus.SPLITS,
    limit_per_split: int | dict[str, int] | None = None,
    num_workers: int | None = None,
    layout: str = "grid",
    speaker_names: dict[str, str] | None = None,
    max_frames: int | None = None,
) -> pathlib.Path:
    """Renders the corpus (or its first `limit_per_split` utterances per split, one number
    or one per split) into `out_dir` in a real corpus's `layout` ("grid", "lrw", "ldc");
    returns the manifest path.

    `speaker_names` renames synthetic speakers ("s5" -> "s1"; default: LDC talker names
    for "ldc"); `max_frames` keeps that many frames of each utterance (LRW clips: 29).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames: expected a positive number of frames, got {max_frames}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = corpus.plan_corpus(config)
    unknown = set(splits) - set(corpus.SPLITS)
    if unknown:
        raise ValueError(f"splits: unknown {sorted(unknown)}, expected some of {corpus.SPLITS}")
    limits = (
        limit_per_split
        if isinstance(limit_per_split, dict)
        else dict.fromkeys(splits, limit_per_split)
    )
    chosen = [plan for split in splits for plan in plans[split][: limits.get(split)]]
    names = {**default_speaker_names(config, layout), **(speaker_names or {})}
    work = [
        (plan, config, str(out_dir), layout, stem, speaker, max_frames)
        for plan, (speaker, stem) in zip(chosen, _targets(chosen, layout, names), strict=True)
    ]
    num_workers = min(num_workers or os.cpu_count() or 1, len(work))
    progress = {"total": len(work), "desc": "export", "unit": "utt"}
    # Worker processes that never re-import the caller's __main__ (lipjax.data.workers).
    rows = list(tqdm(workers.ordered_map(_export_one, work, max(1, num_workers)), **progress))
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
