"""Lip videos from speech and a face photo (or lip crop), one pair or a batch.

python -m lipjax.cli.generate --audio=speech.wav --image=face.jpg --output=out.mp4
python -m lipjax.cli.generate --checkpoint=runs/synthetic --batch=pairs.csv --output=DIR
"""

from __future__ import annotations

import pathlib
import sys

from absl import app, flags
from tqdm import tqdm

from lipjax.inference.generate import (
    DEFAULT_HOP_FRAMES,
    FPS,
    LipGenerator,
    read_pairs,
    write_video,
)

flags.DEFINE_string(
    "checkpoint",
    None,
    "training run workdir or weights folder (default: lipjax's weights trained on synthetic_lips)",
)
flags.DEFINE_string("audio", None, "speech: wav, flac, mp3, ...")
flags.DEFINE_string("image", None, "a face photo, or a 64x64 lip crop")
flags.DEFINE_string("output", "out.mp4", "mp4 to write (a folder with --batch)")
flags.DEFINE_string("batch", None, "CSV (audio,image[,output]) or folder of pairs")
flags.DEFINE_bool("lips_only", False, "write the 64x64 lip crops, not the full face")
flags.DEFINE_integer("hop", DEFAULT_HOP_FRAMES, "frames between overlapping windows")


def main(argv) -> int:
    del argv
    flag = flags.FLAGS
    try:
        generator = LipGenerator(flag.checkpoint, hop=flag.hop)
        if flag.batch:
            jobs = read_pairs(flag.batch, pathlib.Path(flag.output))
        else:
            if not (flag.audio and flag.image):
                raise ValueError("give --audio and --image (or --batch)")
            jobs = [(flag.audio, flag.image, flag.output)]
        for audio_path, image_path, output in tqdm(
            jobs, desc="generate", unit="video", disable=len(jobs) == 1
        ):
            frames, waveform, placement = generator.generate_with_placement(audio_path, image_path)
            write_video(output, frames, waveform, image_path, placement, lips_only=flag.lips_only)
            print(f"{output}: {len(frames)} frames, {len(frames) / FPS:.2f} s")
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
