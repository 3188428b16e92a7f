"""Write the synthetic corpus as files in GRID's layout, so the preprocessing of real
corpora can be tested end to end on data with known ground truth.

    OUT/sN/<utt>.mp4             full lower-face video, H.264 with AAC sound, 25 fps
    OUT/sN/<utt>.wav             16-bit PCM, 44.1 kHz mono
    OUT/sN/align/<utt>.align     GRID word alignment: "start end word", 1/1000-frame units
    OUT/sN/<utt>.landmarks.npy   sidecar: (T, 20, 2) float32 mouth points 48..67, frame px
    OUT/manifest.csv             split, speaker, utterance, text, av_delay_frames, frames

dlib cannot find landmarks on a rendered face, so the sidecar stands in for it.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import pathlib
from collections.abc import Iterable

import numpy as np
import scipy.io.wavfile
from tqdm import tqdm

from data_pipeline.synthetic_lips import corpus
from lipjax import audio, video_io

ALIGN_UNITS_PER_SECOND = 25 * 1000  # GRID: 1/1000 of a 25-fps frame


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


def write_utterance(rendered: corpus.RenderedUtterance, out_dir: pathlib.Path) -> dict:
    """Writes one utterance's files; returns its manifest row."""
    plan = rendered.plan
    speaker_dir = out_dir / plan.speaker.speaker_id
    (speaker_dir / "align").mkdir(parents=True, exist_ok=True)
    name = plan.sentence.utterance_id
    video_io.write_mp4(
        speaker_dir / f"{name}.mp4", rendered.faces, 25, rendered.waveform, audio.SAMPLE_RATE
    )
    pcm = np.round(np.clip(rendered.waveform, -1, 1) * 32767).astype(np.int16)
    scipy.io.wavfile.write(speaker_dir / f"{name}.wav", audio.SAMPLE_RATE, pcm)
    duration = len(rendered.waveform) / audio.SAMPLE_RATE
    (speaker_dir / "align" / f"{name}.align").write_text(
        "\n".join(align_lines(rendered.words, duration)) + "\n"
    )
    np.save(speaker_dir / f"{name}.landmarks.npy", rendered.face_landmarks.astype(np.float32))
    return {
        "split": plan.split,
        "speaker": plan.speaker.speaker_id,
        "utterance": name,
        "text": plan.sentence.text,
        "av_delay_frames": plan.delay_frames,
        "frames": rendered.num_frames,
    }


def _export_one(args) -> dict:
    plan, config, out_dir = args
    return write_utterance(corpus.render_utterance(plan, config), pathlib.Path(out_dir))


def export(
    config: corpus.CorpusConfig,
    out_dir: str | os.PathLike,
    splits: Iterable[str] = corpus.SPLITS,
    limit_per_split: int | None = None,
    num_workers: int | None = None,
) -> pathlib.Path:
    """Renders the corpus (or its first `limit_per_split` utterances per split) into
    `out_dir` in GRID's layout; returns the manifest path."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = corpus.plan_corpus(config)
    unknown = set(splits) - set(corpus.SPLITS)
    if unknown:
        raise ValueError(f"splits: unknown {sorted(unknown)}, expected some of {corpus.SPLITS}")
    work = [
        (plan, config, str(out_dir)) for split in splits for plan in plans[split][:limit_per_split]
    ]
    num_workers = min(num_workers or os.cpu_count() or 1, len(work))
    progress = {"total": len(work), "desc": "export", "unit": "utt"}
    if num_workers <= 1:
        rows = [_export_one(w) for w in tqdm(work, **progress)]
    else:
        with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
            rows = list(tqdm(pool.imap(_export_one, work), **progress))
    manifest = out_dir / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
