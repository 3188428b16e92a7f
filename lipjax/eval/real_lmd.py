"""The paper's LMD on the real corpora (Eq. 5): dlib on crops pasted back into their frames.

The paper detects lip landmarks with dlib on the generated video and on the real one. A
64 x 64 lip crop is too small for dlib's face detector, so each generated crop is pasted
back into its source frame (`lipjax.data.crop.paste_frame`, the exact inverse of the crop,
from the box the builders store as `crop_box`), dlib (HOG face detection on every frame,
then the 68-point predictor) finds the mouth points 48..67 on the pasted frame and on the
real frame, and `lipjax.eval.metrics.landmark_distance` compares them: each frame's points
minus their mean, the Euclidean distance averaged over the 20 points and the frames.

The LMD is in source-frame pixels, as dlib reports them; `lmd_crop` is the same distance
in crop pixels (each frame's scaled by 64 / (2 r)), the unit of our synthetic LMD. A
frame in which dlib finds no face in the real or in the pasted frame is left out of the
clip's LMD and counted; a clip with no frame left has LMD NaN (evaluation averages the
others and reports the counts). Nothing here raises for a missing face.

    scorer = PastedLmd(manual_dir)
    result = scorer.clip_lmd("s1/bbaf2n.mpg", range(8, 24), boxes, generated_crops)
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import pathlib
from collections.abc import Sequence

import numpy as np

from lipjax.data import crop
from lipjax.eval import metrics

logger = logging.getLogger(__name__)

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, for dlib's grey images
MOUTH = slice(48, 68)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """An RGB frame (H, W, 3) as the uint8 grey image dlib reads."""
    return np.clip(np.rint(np.asarray(frame, np.float64) @ _LUMA), 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class ClipLmd:
    """The LMD of one clip and how many of its frames dlib could score."""

    lmd: float  # source-frame pixels; NaN when no frame was scored
    lmd_crop: float  # the same in crop pixels
    frames: int
    scored: int  # frames with a face in both the real and the pasted frame
    no_face_real: int  # frames whose real frame has no face dlib finds
    no_face_generated: int  # frames whose real frame has one but the pasted one has none


class PastedLmd:
    """dlib LMD of generated crops pasted back into their source videos under `manual_dir`.

    Decoded videos (the last `cache_videos`) and the real frames' landmarks are cached, so
    overlapping windows of one utterance decode it and detect on its frames once.
    `feather` > 0 blends the crop's outer pixels into the frame (`crop.paste_frame`);
    `upsample` is dlib's detector upsampling (0: faces of about 80 px and more).
    """

    def __init__(
        self,
        manual_dir: str | pathlib.Path,
        *,
        feather: float = 0.0,
        upsample: int = 0,
        cache_videos: int = 2,
    ):
        from lipjax.data import landmarks

        self.manual_dir = pathlib.Path(manual_dir)
        self.feather = feather
        self.cache_videos = cache_videos
        self._dlib = landmarks.DlibLandmarks(upsample=upsample)
        self._videos: collections.OrderedDict[str, dict] = collections.OrderedDict()

    def _video(self, source_video: str) -> dict:
        if source_video in self._videos:
            self._videos.move_to_end(source_video)
            return self._videos[source_video]
        from data_pipeline import preprocess

        frames, _, _ = preprocess.decode_video(self.manual_dir / source_video)
        entry = {"frames": frames, "landmarks": {}}
        self._videos[source_video] = entry
        while len(self._videos) > self.cache_videos:
            self._videos.popitem(last=False)
        return entry

    def source_frames(self, source_video: str, frame_indices: Sequence[int]) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 of `manual_dir / source_video`.

        Raises data_pipeline.preprocess.SkipUtterance for a missing or unreadable video,
        IndexError for frames past its end."""
        frames = self._video(source_video)["frames"]
        indices = np.asarray(frame_indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(frames)):
            raise IndexError(
                f"{source_video}: frames {indices.min()}..{indices.max()} asked of a video "
                f"of {len(frames)} frames"
            )
        return frames[indices]

    def mouth(self, frame: np.ndarray) -> np.ndarray | None:
        """dlib's mouth points (20, 2) in one RGB frame, or None when it finds no face."""
        points = self._dlib.detect_landmarks(to_gray(frame))
        return None if points is None else points[MOUTH]

    def real_mouths(self, source_video: str, frame_indices: Sequence[int]) -> list:
        """The mouth points (20, 2) or None of each real frame (cached)."""
        entry = self._video(source_video)
        frames = self.source_frames(source_video, frame_indices)
        cache = entry["landmarks"]
        out = []
        for index, frame in zip(frame_indices, frames, strict=True):
            if int(index) not in cache:
                cache[int(index)] = self.mouth(frame)
            out.append(cache[int(index)])
        return out

    def paste(self, frames: np.ndarray, crops: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Each crop (T, 64, 64, 3) pasted into its frame (T, H, W, 3) at its box (T, 3)."""
        return np.stack(
            [
                crop.paste_frame(frame, lips, box[:2], float(box[2]), self.feather)
                for frame, lips, box in zip(frames, crops, np.asarray(boxes), strict=True)
            ]
        )

    def clip_lmd(
        self,
        source_video: str,
        frame_indices: Sequence[int],
        crop_boxes: np.ndarray,
        crops: np.ndarray,
    ) -> ClipLmd:
        """LMD of `crops` (T, 64, 64, 3) uint8, pasted at `crop_boxes` (T, 3) into frames
        `frame_indices` of `source_video` (relative to manual_dir), against those frames."""
        crops = np.asarray(crops)
        boxes = np.asarray(crop_boxes, np.float64)
        if crops.dtype != np.uint8 or crops.ndim != 4:
            raise ValueError(
                f"crops: expected (T, 64, 64, 3) uint8, got {crops.shape} {crops.dtype}"
            )
        if not len(crops) == len(boxes) == len(frame_indices):
            raise ValueError(
                f"{len(crops)} crops, {len(boxes)} boxes and {len(frame_indices)} frame indices"
            )
        real = self.real_mouths(source_video, frame_indices)
        frames = self.source_frames(source_video, frame_indices)
        real_points, fake_points, scales = [], [], []
        no_face_real = no_face_generated = 0
        for frame, lips, box, real_mouth in zip(frames, crops, boxes, real, strict=True):
            if real_mouth is None:
                no_face_real += 1
                continue
            pasted = crop.paste_frame(frame, lips, box[:2], float(box[2]), self.feather)
            fake_mouth = self.mouth(pasted)
            if fake_mouth is None:
                no_face_generated += 1
                continue
            real_points.append(real_mouth)
            fake_points.append(fake_mouth)
            scales.append(crop.CROP_SIZE / (2.0 * box[2]))
        lmd = lmd_crop = float("nan")
        if real_points:
            real_points, fake_points = np.stack(real_points), np.stack(fake_points)
            lmd = metrics.landmark_distance(real_points, fake_points)
            scale = np.asarray(scales)[:, None, None]
            lmd_crop = metrics.landmark_distance(real_points * scale, fake_points * scale)
        return ClipLmd(
            lmd=lmd,
            lmd_crop=lmd_crop,
            frames=len(crops),
            scored=len(scales),
            no_face_real=no_face_real,
            no_face_generated=no_face_generated,
        )


def lmd_on_pasted_frames(
    manual_dir: str | pathlib.Path,
    source_video: str,
    frame_indices: Sequence[int],
    crop_boxes: np.ndarray,
    crops: np.ndarray,
    **options,
) -> ClipLmd:
    """`PastedLmd(manual_dir, **options).clip_lmd(...)`, for one clip."""
    return PastedLmd(manual_dir, **options).clip_lmd(source_video, frame_indices, crop_boxes, crops)


class RealLmdScorer:
    """The `frame_lmd` of `lipjax.eval.evaluation.evaluate` on a real corpus: per-clip dlib LMD
    of the model and static rows of a batch, from the windows' utterances in `source` (a
    built split of grid / lrw / ldc with `crop_box` and `source_video`).

    `counts[row]` sums, over the clips scored, the frames, the frames scored, those
    without a face in the real frame or in the pasted one, the clips left without LMD and
    the clips whose video could not be read.
    """

    def __init__(self, manual_dir: str | pathlib.Path, source: Sequence, **options):
        if not len(source):
            raise ValueError("RealLmdScorer: the split is empty")
        first = source[0]
        if "crop_box" not in first or "source_video" not in first:
            raise ValueError(
                "RealLmdScorer: the dataset stores no crop_box / source_video (built by a "
                "builder older than 1.1.0); rebuild it"
            )
        self.lmd = PastedLmd(manual_dir, **options)
        video = self.lmd.manual_dir / _text(first["source_video"])
        if not video.is_file():
            raise FileNotFoundError(
                f"manual_dir {self.lmd.manual_dir}: no {_text(first['source_video'])} (the "
                "split's first video); pass the manual_dir the dataset was built from"
            )
        self.source = source
        self._boxes: collections.OrderedDict[int, tuple[str, np.ndarray]] = (
            collections.OrderedDict()
        )
        self.counts: dict[str, collections.Counter] = {}

    def _utterance(self, index: int) -> tuple[str, np.ndarray]:
        if index not in self._boxes:
            example = self.source[index]
            self._boxes[index] = (
                _text(example["source_video"]),
                np.asarray(example["crop_box"], np.float64),
            )
            while len(self._boxes) > 64:
                self._boxes.popitem(last=False)
        return self._boxes[index]

    def __call__(
        self, batch: dict, valid: np.ndarray, clips: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """{row: per-clip LMD (B,)} for `clips` {row: (B, T, 64, 64, 3) uint8} of the valid
        rows of `batch` (its utterance_index and start_frame)."""
        utterances = np.asarray(batch["utterance_index"])[valid]
        starts = np.asarray(batch["start_frame"])[valid]
        out = {row: np.full(len(utterances), np.nan) for row in clips}
        for clip, (utterance, start) in enumerate(zip(utterances, starts, strict=True)):
            video, boxes = self._utterance(int(utterance))
            for row, row_clips in clips.items():
                counts = self.counts.setdefault(row, collections.Counter())
                frames = np.arange(int(start), int(start) + row_clips.shape[1])
                counts["clips"] += 1
                try:
                    result = self.lmd.clip_lmd(video, frames, boxes[frames], row_clips[clip])
                except (IndexError, _skip_error()) as error:
                    logger.warning("LMD: clip of %s left out: %s", video, error)
                    counts["unreadable_clips"] += 1
                    counts["clips_without_lmd"] += 1
                    continue
                out[row][clip] = result.lmd
                counts["frames"] += result.frames
                counts["scored_frames"] += result.scored
                counts["no_face_real"] += result.no_face_real
                counts["no_face_generated"] += result.no_face_generated
                counts["clips_without_lmd"] += int(not np.isfinite(result.lmd))
        return out

    def summary(self) -> str:
        """One line per row: frames scored and those dlib found no face in."""
        lines = []
        for row, counts in self.counts.items():
            lines.append(
                f"{row}: {counts['scored_frames']} of {counts['frames']} frames scored "
                f"({counts['no_face_real']} without a face in the real frame, "
                f"{counts['no_face_generated']} in the pasted one); "
                f"{counts['clips_without_lmd']} of {counts['clips']} clips without LMD"
                + (
                    f", {counts['unreadable_clips']} unreadable"
                    if counts["unreadable_clips"]
                    else ""
                )
            )
        return "; ".join(lines)


def _skip_error() -> type[Exception]:
    from data_pipeline import preprocess

    return preprocess.SkipUtterance


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
