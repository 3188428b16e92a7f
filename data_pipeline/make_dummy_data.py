"""Writes the `dummy_data/` of the grid, lrw and ldc builders with our own code: a few
utterances of `synthetic_lips/tiny` exported in each corpus's layout, with landmark
sidecars (the builders' "auto" landmark source reads them; dlib cannot see a rendered
face). Short clips keep the files small.

    python -m data_pipeline.make_dummy_data [grid lrw ldc]   (default: all three)
"""

from __future__ import annotations

import pathlib
import shutil

from absl import app

from data_pipeline.synthetic_lips import CONFIGS, export

HERE = pathlib.Path(__file__).parent

# Synthetic tiny has train speakers s1..s4 and unseen test speakers s5, s6; GRID's
# default test speakers are s1 and s2, so the names are rotated.
GRID_SPEAKERS = {"s5": "s1", "s6": "s2", "s1": "s3", "s2": "s4", "s3": "s5", "s4": "s6"}

DUMMY = {
    # builder: (layout, utterances per synthetic split, frames per clip, speaker names)
    "grid": ("grid", {"train": 3, "validation": 2, "test": 2}, 24, GRID_SPEAKERS),
    "lrw": ("lrw", {"train": 3, "validation": 1, "test": 2}, 29, None),
    "ldc": ("ldc", {"train": 3, "validation": 2, "test": 2}, 24, None),
}


def make(name: str, out_dir: pathlib.Path | None = None) -> pathlib.Path:
    """Writes one builder's dummy data (default: `data_pipeline/<name>/dummy_data`)."""
    layout, limits, frames, speakers = DUMMY[name]
    out_dir = out_dir or HERE / name / "dummy_data"
    shutil.rmtree(out_dir, ignore_errors=True)
    export.export(
        CONFIGS["tiny"], out_dir, limit_per_split=limits, num_workers=1, layout=layout,
        speaker_names=speakers, max_frames=frames,
    )  # fmt: skip
    return out_dir


def main(argv: list[str]) -> None:
    names = argv[1:] or sorted(DUMMY)
    unknown = sorted(set(names) - set(DUMMY))
    if unknown:
        raise app.UsageError(f"unknown builders {unknown}, expected some of {sorted(DUMMY)}")
    for name in names:
        print(f"{name}: {make(name)}")


if __name__ == "__main__":
    app.run(main)
