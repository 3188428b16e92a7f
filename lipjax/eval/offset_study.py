"""The audio-visual offset study of the paper's Fig. 4, on any built lipjax dataset.

For each utterance a visual series (from the stored mouth landmarks) is correlated with an
acoustic one at offsets k = 0..7 frames, the visual series shifted forward in time by k
(Pearson r of visual[t] and acoustic[t + k]): a best k > 0 means the lips lead the audio.
The figure has the paper's two panels: (a) the correlation over offsets of a few example
videos, (b) the number of videos whose correlation is largest at each offset. On
synthetic_lips the injected delay (`av_delay_frames`) is drawn beside (b) and the share of
videos whose best offset recovers it is reported; real corpora store -1 (unknown).

The paper correlates mean optical flow with the mean derivative of the log-mel. Measures
here (--visual, --acoustic):
  opening     inner-lip gap per frame (data_pipeline.synthetic_lips.analysis);
  lip_motion  mean displacement of the 20 mouth points between frames, after removing the
              mouth's own translation: a landmark stand-in for the flow magnitude;
  envelope, energy_db  the waveform's RMS per frame, or its energy in dB;
  mel_change  mean absolute change of the log-mel between frames (the paper's audio
              derivative, as a magnitude).
A per-frame series paired with a between-frames one is cut to the frames they share.

    python -m lipjax.cli.offset_study --dataset=synthetic_lips/small --split=train --output=DIR
"""

from __future__ import annotations

import csv
import json
import pathlib
from collections.abc import Iterable, Mapping

import numpy as np

from data_pipeline.synthetic_lips import analysis
from lipjax.data import datasets, pipeline

MAX_OFFSET = 7  # the paper's offsets 0..7
MELS_PER_FRAME = pipeline.MELS_PER_FRAME


def lip_motion(landmarks: np.ndarray) -> np.ndarray:
    """Mean displacement (pixels) of the mouth points between consecutive frames, each
    frame's points taken about their mean: (T - 1,) for landmarks (T, 20, 2)."""
    centred = landmarks - landmarks.mean(axis=1, keepdims=True)
    return np.linalg.norm(np.diff(centred, axis=0), axis=-1).mean(axis=1)


def mel_change(log_mel: np.ndarray) -> np.ndarray:
    """Mean absolute change (dB) of the log-mel between consecutive video frames: (T - 1,)
    for a log-mel (4 T, 128), each frame's 4 mel frames averaged first."""
    frames = len(log_mel) // MELS_PER_FRAME
    per_frame = log_mel[: frames * MELS_PER_FRAME].reshape(frames, MELS_PER_FRAME, -1).mean(1)
    return np.abs(np.diff(per_frame, axis=0)).mean(axis=1)


VISUAL_MEASURES = {
    "opening": lambda example: analysis.mouth_opening(np.asarray(example["landmarks"])),
    "lip_motion": lambda example: lip_motion(np.asarray(example["landmarks"], np.float64)),
}
ACOUSTIC_MEASURES = {
    **{
        name: (lambda function: lambda example: function(np.asarray(example["waveform"])))(f)
        for name, f in analysis.ACOUSTIC_MEASURES.items()
    },
    "mel_change": lambda example: mel_change(np.asarray(example["log_mel"], np.float64)),
}
# Series that describe changes between frames are one shorter than per-frame ones.
_BETWEEN_FRAMES = {"lip_motion", "mel_change"}


def paired_series(example: Mapping, visual: str, acoustic: str) -> tuple[np.ndarray, np.ndarray]:
    """The visual and acoustic series of one utterance, cut to the frames they share."""
    if visual not in VISUAL_MEASURES:
        raise ValueError(f"visual: expected one of {sorted(VISUAL_MEASURES)}, got {visual!r}")
    if acoustic not in ACOUSTIC_MEASURES:
        raise ValueError(f"acoustic: expected one of {sorted(ACOUSTIC_MEASURES)}, got {acoustic!r}")
    mixed = (visual in _BETWEEN_FRAMES) != (acoustic in _BETWEEN_FRAMES)
    series = []
    for name, measures in ((visual, VISUAL_MEASURES), (acoustic, ACOUSTIC_MEASURES)):
        values = np.asarray(measures[name](example), np.float64)
        # A change between frames t - 1 and t belongs to frame t: per-frame values of
        # frame 0 have no partner then.
        series.append(values[1:] if mixed and name not in _BETWEEN_FRAMES else values)
    length = min(len(s) for s in series)
    return series[0][:length], series[1][:length]


def study(
    examples: Iterable[Mapping],
    visual: str = "opening",
    acoustic: str = "envelope",
    max_offset: int = MAX_OFFSET,
) -> dict:
    """Per utterance: the correlation curve over offsets 0..max_offset, its best offset and
    the stored delay (-1 where unknown); and how often the best offset equals the delay."""
    curves, best, delays, speakers = [], [], [], []
    for example in examples:
        visual_series, acoustic_series = paired_series(example, visual, acoustic)
        curve = analysis.offset_correlations(visual_series, acoustic_series, max_offset)
        curves.append(curve)
        best.append(int(np.nanargmax(curve)) if np.isfinite(curve).any() else -1)
        delays.append(int(example.get("av_delay_frames", -1)))
        speaker = example.get("speaker", "")
        speakers.append(speaker.decode() if isinstance(speaker, bytes) else str(speaker))
    if not curves:
        raise ValueError("examples: the split has no utterances")
    best, delays = np.array(best), np.array(delays)
    known = delays >= 0
    summary = {
        "utterances": len(best),
        "visual": visual,
        "acoustic": acoustic,
        "max_offset": max_offset,
        "videos_per_best_offset": np.bincount(best[best >= 0], minlength=max_offset + 1).tolist(),
        "mean_curve": np.nanmean(np.array(curves), axis=0).tolist(),
    }
    if known.any():
        summary["delays_known"] = int(known.sum())
        summary["share_best_offset_at_delay"] = float(np.mean(best[known] == delays[known]))
        summary["share_best_offset_within_one_frame"] = float(
            np.mean(np.abs(best[known] - delays[known]) <= 1)
        )
    return {
        "summary": summary,
        "curves": np.array(curves),
        "best_offsets": best,
        "delays": delays,
        "speakers": speakers,
    }


def plot_figure_4(result: dict, path: pathlib.Path, num_examples: int = 4) -> pathlib.Path:
    """The two panels of the paper's Fig. 4 for `result` of `study`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = result["summary"]
    offsets = np.arange(summary["max_offset"] + 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    picks = np.linspace(0, len(result["curves"]) - 1, min(num_examples, len(result["curves"])))
    for index in picks.astype(int):
        delay = result["delays"][index]
        label = f"video {index}" + (f" (delay {delay})" if delay >= 0 else "")
        left.plot(offsets, result["curves"][index], marker="o", label=label)
    left.set(
        xlabel="time steps the visual series is shifted forward",
        ylabel="correlation coefficient",
        title="(a) correlation over offsets, example videos",
        xticks=offsets,
    )
    left.legend(fontsize=7)
    counts = np.array(summary["videos_per_best_offset"])
    known = result["delays"] >= 0
    width = 0.4 if known.any() else 0.8
    right.bar(offsets - (width / 2 if known.any() else 0), counts, width, label="best offset")
    if known.any():
        delays = np.bincount(result["delays"][known], minlength=len(offsets))[: len(offsets)]
        right.bar(offsets + width / 2, delays, width, label="injected delay")
        right.legend(fontsize=7)
    right.set(
        xlabel="time steps the visual series is shifted forward",
        ylabel="number of videos",
        title="(b) offset of the largest correlation",
        xticks=offsets,
    )
    figure.suptitle(f"{summary['visual']} vs {summary['acoustic']}, {summary['utterances']} videos")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def load_examples(dataset: str, split: str, data_dir: str | None, limit: int | None = None):
    """Decoded utterances of a built dataset's split."""
    source = datasets.open_split(dataset, split, data_dir)
    count = len(source) if limit is None else min(limit, len(source))
    return (source[index] for index in range(count))


def write_outputs(result: dict, output: pathlib.Path, name: str) -> list[pathlib.Path]:
    """NAME.png (the figure), NAME.json (summary) and NAME.csv (one line per video)."""
    output.mkdir(parents=True, exist_ok=True)
    files = [plot_figure_4(result, output / f"{name}.png")]
    files.append(output / f"{name}.json")
    files[-1].write_text(json.dumps(result["summary"], indent=2) + "\n")
    files.append(output / f"{name}.csv")
    with files[-1].open("w", newline="") as file:
        writer = csv.writer(file)
        offsets = range(result["summary"]["max_offset"] + 1)
        writer.writerow(["video", "speaker", "delay", "best_offset", *[f"r_{k}" for k in offsets]])
        for index, curve in enumerate(result["curves"]):
            writer.writerow([index, result["speakers"][index], result["delays"][index],
                             result["best_offsets"][index], *np.round(curve, 4)])  # fmt: skip
    return files


def run(
    dataset: str,
    split: str,
    output: str | pathlib.Path,
    data_dir: str | None = None,
    visual: str = "opening",
    acoustic: str = "envelope",
    max_offset: int = MAX_OFFSET,
    limit: int | None = None,
) -> tuple[dict, list[pathlib.Path]]:
    """The study on a built dataset's split (its first `limit` utterances), written to
    `output` (`write_outputs`): (summary, files written)."""
    examples = load_examples(dataset, split, data_dir, limit)
    result = study(examples, visual, acoustic, max_offset)
    name = f"offset_study_{split}_{visual}_{acoustic}"
    return result["summary"], write_outputs(result, pathlib.Path(output), name)
