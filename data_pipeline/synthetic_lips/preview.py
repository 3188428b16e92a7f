"""A look at a built corpus: clips as mp4 with sound, and a contact sheet PNG."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np

from data_pipeline.synthetic_lips import analysis
from lipjax.data import audio, video_io

PREVIEW_SCALE = 4  # 64 px crops are shown at 256 px


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def one_per_speaker(source, limit: int) -> list[Mapping]:
    """The first example of each speaker in a data source, up to `limit` speakers."""
    chosen, seen = [], set()
    for index in range(len(source)):
        example = source[index]
        speaker = _text(example["speaker"])
        if speaker not in seen:
            seen.add(speaker)
            chosen.append(example)
        if len(chosen) == limit:
            break
    return chosen


def write_clips(examples: Sequence[Mapping], out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Each example as `<speaker>_<utterance>.mp4`: the lip crops enlarged, with sound."""
    paths = []
    for example in examples:
        name = f"{_text(example['speaker'])}_{_text(example['utterance'])}.mp4"
        frames = video_io.upscale(np.asarray(example["frames"]), PREVIEW_SCALE)
        video_io.write_mp4(out_dir / name, frames, 25, example["waveform"], audio.SAMPLE_RATE)
        paths.append(out_dir / name)
    return paths


def contact_sheet(examples: Sequence[Mapping], path: pathlib.Path, columns: int = 10) -> None:
    """One row per example: `columns` frames spread over the utterance, mouth landmarks on
    the first frame, and beside it mouth opening against audio energy over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(examples)
    figure = plt.figure(figsize=(columns * 0.9 + 4.5, rows * 1.0 + 0.6))
    grid = figure.add_gridspec(rows, columns + 4)
    for row, example in enumerate(examples):
        frames = np.asarray(example["frames"])
        landmarks = np.asarray(example["landmarks"])
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        for column, frame_index in enumerate(picks):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(frames[frame_index], interpolation="nearest", extent=(0, 64, 64, 0))
            if column == 0:
                points = landmarks[frame_index]
                axis.plot(points[:12, 0], points[:12, 1], ".", ms=2, color="cyan")
                axis.plot(points[12:, 0], points[12:, 1], ".", ms=2, color="yellow")
                axis.set_ylabel(_text(example["speaker"]), fontsize=7)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"t={frame_index}", fontsize=6)
        curve = figure.add_subplot(grid[row, columns:])
        opening = analysis.mouth_opening(landmarks)
        envelope = audio.frame_rms(np.asarray(example["waveform"]))
        curve.plot(opening / max(opening.max(), 1e-6), label="mouth opening", lw=1)
        curve.plot(envelope / max(envelope.max(), 1e-9), label="audio envelope", lw=1)
        curve.set_title(
            f'"{_text(example["text"])}", lips lead {int(example["av_delay_frames"])} fr',
            fontsize=6,
        )
        curve.tick_params(labelsize=5)
        if row == 0:
            curve.legend(fontsize=5, loc="upper right")
    figure.tight_layout(pad=0.3)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def preview(source, out_dir: str | os.PathLike, num_speakers: int = 6) -> dict:
    """Writes clips and `contact_sheet.png` for one utterance of each of a few speakers."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = one_per_speaker(source, num_speakers)
    clips = write_clips(examples, out_dir)
    sheet = out_dir / "contact_sheet.png"
    contact_sheet(examples, sheet)
    return {"clips": clips, "contact_sheet": sheet}
