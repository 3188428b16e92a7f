"""Crop jitter on a still face: frame-to-frame motion of the crop box centre, with and
without temporal smoothing of the box.

    python benchmarks/crop_jitter.py [--frames 75] [--noise 2.0]

A still face (scikit-image's `astronaut` in a 640 x 480 frame) with fresh sensor noise in
every frame, encoded as H.264: any motion of the crop is jitter. dlib finds the landmarks
(detection on every frame as the authors did, or every k frames with tracking between);
the box is the crop box (docs/design.md, "Lip crops"), smoothed by a moving average of
`window` frames or not.
Prints the mean and largest frame-to-frame centre motion, in frame pixels and as a share
of the crop's side (2r), and the same for the mouth landmarks in crop pixels.
"""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np
import skimage.data
from absl import app, flags

from data_pipeline import preprocess
from lipjax.data import crop, landmarks, video_io


def still_face(path: pathlib.Path, num_frames: int, noise: float) -> None:
    face = skimage.data.astronaut()[:320, 80:420]
    frame = np.full((480, 640, 3), 90, np.float64)
    frame[80:400, 150:490] = face
    rng = np.random.default_rng(0)
    frames = np.clip(frame + rng.normal(0, noise, (num_frames, *frame.shape)), 0, 255)
    video_io.write_mp4(path, frames.astype(np.uint8), 25)


def jitter(points: np.ndarray, window: int) -> dict[str, float]:
    centres, half_sizes = crop.smooth_boxes(*crop.mouth_boxes(points), window)
    motion = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    in_crop = crop.landmarks_to_crop(points, centres, half_sizes)
    landmark_motion = np.linalg.norm(np.diff(in_crop, axis=0), axis=2).mean(axis=1)
    return {
        "mean_px": motion.mean(),
        "max_px": motion.max(),
        "share": motion.mean() / (2 * half_sizes.mean()),
        "landmarks_crop_px": landmark_motion.mean(),
    }


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_integer("frames", 75, "frames of the still face", lower_bound=2)
    flags.DEFINE_float("noise", 2.0, "sensor noise, grey levels")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    args = FLAGS
    with tempfile.TemporaryDirectory() as tmp:
        video = pathlib.Path(tmp) / "still.mp4"
        still_face(video, args.frames, args.noise)
        _, gray, _ = preprocess.decode_video(video)
    print(f"Still face, 640 x 480, {args.frames} frames, noise {args.noise} grey levels, H.264")
    print("| landmarks | box smoothing | centre motion mean / max (px) | mean / crop side "
          "| mouth landmark motion in the crop (px of 64) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for every in (1, 10):
        points = landmarks.DlibLandmarks(detect_every=every).face_landmarks(gray)
        mouth = points[:, landmarks.MOUTH]
        for window in (1, 5, 9):
            result = jitter(mouth, window)
            label = "detect every frame" if every == 1 else f"detect every {every}, track"
            smoothing = "none" if window == 1 else f"moving average of {window}"
            motion = f"{result['mean_px']:.3f} / {result['max_px']:.3f}"
            share = f"{100 * result['share']:.2f}%"
            print(f"| {label} | {smoothing} | {motion} | {share} | "
                  f"{result['landmarks_crop_px']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    define_flags()
    app.run(main)
