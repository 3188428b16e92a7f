"""The feature set every lipjax corpus stores (synthetic_lips, grid, lrw, ldc), so that
`lipjax.data.pipeline` reads any of them; the real corpora add where each crop came from
(`real_corpus_features`).

Arrays are `tfds.features.Tensor` stored as raw bytes: decoding an utterance takes 0.35 ms
instead of 8 ms as int64 lists, and TFDS's Video/Image features would need TensorFlow.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from lipjax.data import audio, crop

_RAW = tfds.features.Encoding.BYTES

# Value of `av_delay_frames` for real corpora, whose audio-visual offset is not known.
UNKNOWN_DELAY = -1


def _events(label: str) -> tfds.features.Sequence:
    return tfds.features.Sequence(
        {
            label: tfds.features.Text(),
            "start": tfds.features.Scalar(np.float32, doc="seconds"),
            "end": tfds.features.Scalar(np.float32, doc="seconds"),
        }
    )


def lip_features() -> tfds.features.FeaturesDict:
    """Lip crops, log-mel, mouth landmarks, waveform and metadata of one utterance."""
    return tfds.features.FeaturesDict(_lip_feature_dict())


def real_corpus_features() -> tfds.features.FeaturesDict:
    """`lip_features` and, for the real corpora (grid, lrw, ldc), where each crop came
    from: its box in the source frame and the source video, so that generated crops can be
    pasted back for the paper's LMD (dlib on whole frames; `lipjax.eval.real_lmd`)."""
    return tfds.features.FeaturesDict(
        {
            **_lip_feature_dict(),
            "crop_box": tfds.features.Tensor(
                shape=(None, 3),
                dtype=np.float32,
                encoding=_RAW,
                doc="per frame (centre x, centre y, half-size r) in source-frame pixels: the "
                "crop is the square [cx - r, cx + r] x [cy - r, cy + r] resized to 64 x 64 "
                "(lipjax.data.crop.crop_frame; no rotation); frame t is the video's frame t",
            ),
            "source_video": tfds.features.Text(doc="the video file, relative to manual_dir"),
        }
    )


def _lip_feature_dict() -> dict:
    size = crop.CROP_SIZE
    return {
        "frames": tfds.features.Tensor(shape=(None, size, size, 3), dtype=np.uint8, encoding=_RAW),
        "log_mel": tfds.features.Tensor(
            shape=(None, audio.N_MELS),
            dtype=np.float32,
            encoding=_RAW,
            doc="dB, 4 per frame",
        ),
        "landmarks": tfds.features.Tensor(
            shape=(None, crop.NUM_MOUTH_LANDMARKS, 2),
            dtype=np.float32,
            encoding=_RAW,
            doc="mouth points 48..67 as (x, y) in crop pixels",
        ),
        "waveform": tfds.features.Tensor(
            shape=(None,), dtype=np.float32, encoding=_RAW, doc="44.1 kHz mono"
        ),
        "speaker": tfds.features.Text(),
        "utterance": tfds.features.Text(doc="GRID-style id, e.g. bbaf2n"),
        "text": tfds.features.Text(),
        "phonemes": _events("phoneme"),
        "words": _events("word"),
        "av_delay_frames": tfds.features.Scalar(
            np.int32, doc="frames by which the lips lead the audio"
        ),
    }


def events(items: list[tuple[str, float, float]], label: str) -> dict:
    """A `phonemes` or `words` feature value from (label, start s, end s) tuples."""
    return {
        label: [item[0] for item in items],
        "start": np.array([item[1] for item in items], np.float32),
        "end": np.array([item[2] for item in items], np.float32),
    }
