"""Preprocessing speed of real video: frames per second on ONE core, 640 x 480 at 25 fps.

    python benchmarks/preprocess_speed.py [--frames 75] [--repeats 3]

The clip is scikit-image's `astronaut` (a real face, which dlib finds) placed in a
640 x 480 frame drifting a few pixels per frame, H.264 with sound and a .wav beside it,
like a GRID utterance of 3 s. The process is pinned to one core and FFmpeg decodes with
one thread, as in a build (one process per core). Prints a table: the whole
`preprocess.preprocess` per `detect_every`, and where the time goes.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import time

import numpy as np
import scipy.io.wavfile
import skimage.data
from absl import app, flags

from data_pipeline import preprocess
from lipjax.data import audio, landmarks, video_io


def make_clip(directory: pathlib.Path, num_frames: int) -> preprocess.Utterance:
    """A 640 x 480 25-fps clip of a real face moving slowly, with its .wav."""
    face = skimage.data.astronaut()[:320, 80:420]  # head and shoulders, 320 x 340
    rng = np.random.default_rng(0)
    frames = np.empty((num_frames, 480, 640, 3), np.uint8)
    for t in range(num_frames):
        frame = np.full((480, 640, 3), 90, np.uint8)
        x, y = 150 + round(8 * np.sin(t / 9)), 80 + round(4 * np.cos(t / 13))
        frame[y : y + 320, x : x + 340] = face
        frames[t] = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255)
    video = directory / "s1" / "bench0a.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    sound = 0.05 * rng.standard_normal(num_frames * audio.SAMPLES_PER_VIDEO_FRAME)
    video_io.write_mp4(video, frames, 25, sound, audio.SAMPLE_RATE)
    wav = video.with_suffix(".wav")
    scipy.io.wavfile.write(wav, audio.SAMPLE_RATE, (sound * 32767).astype(np.int16))
    return preprocess.Utterance("s1_bench0a", "s1", "bench0a", str(video), str(wav))


def best_of(repeats: int, function) -> float:
    """The fastest of `repeats` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_integer("frames", 75, "frames of the clip", lower_bound=1)
    flags.DEFINE_integer("repeats", 3, "runs of each stage (the fastest counts)", lower_bound=1)
    flags.DEFINE_integer("core", 0, "CPU core to pin the process to", lower_bound=0)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    args = FLAGS
    os.sched_setaffinity(0, {args.core})
    with tempfile.TemporaryDirectory() as tmp:
        utterance = make_clip(pathlib.Path(tmp), args.frames)
        n = args.frames
        landmarks._dlib_models()  # load the model before timing
        preprocess.preprocess(utterance, preprocess.PreprocessOptions(landmarks="dlib"))

        print(f"640 x 480, {n} frames, 1 core (core {args.core}), best of {args.repeats}; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")  # fmt: skip
        print("| stage | ms per frame | frames/s |")
        print("| --- | --- | --- |")
        rgb, gray, _ = preprocess.decode_video(utterance.video)
        stages = {
            "decode (RGB + luma)": lambda: preprocess.decode_video(utterance.video),
            "face detection (every frame)": lambda: [
                landmarks.DlibLandmarks().detect(g) for g in gray
            ],
            "landmarks, detect every 10": lambda: landmarks.DlibLandmarks(
                detect_every=10
            ).face_landmarks(gray),
        }
        mouth = landmarks.DlibLandmarks(detect_every=10)(rgb, gray, pathlib.Path("x"))
        stages["crop (region, smoothed 5)"] = lambda: preprocess.crop_video(rgb, mouth, 5)
        stages["audio read + log-mel"] = lambda: audio.log_mel(preprocess.read_audio(utterance))
        for name, function in stages.items():
            seconds = best_of(args.repeats, function)
            print(f"| {name} | {1e3 * seconds / n:.2f} | {n / seconds:.0f} |")
        for every in (1, 5, 10, 25):
            options = preprocess.PreprocessOptions(landmarks="dlib", detect_every=every)
            seconds = best_of(args.repeats, lambda o=options: preprocess.preprocess(utterance, o))
            print(f"| whole preprocess, detect every {every} | {1e3 * seconds / n:.2f} | "
                  f"**{n / seconds:.0f}** |")  # fmt: skip


if __name__ == "__main__":
    define_flags()
    app.run(main)
