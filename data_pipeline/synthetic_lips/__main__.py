"""Command line of the synthetic corpus.

python -m data_pipeline.synthetic_lips build   --config=small [--data_dir=DIR] [--preview_dir=DIR]
python -m data_pipeline.synthetic_lips preview --config=small --out=DIR
python -m data_pipeline.synthetic_lips export  --config=tiny  --out=DIR [--limit=N]
python -m data_pipeline.synthetic_lips study   --config=small --split=train [--out=DIR]
"""

from __future__ import annotations

import json
import pathlib
import time

import numpy as np
from absl import app, flags

from data_pipeline.synthetic_lips import CONFIGS, SyntheticLips, analysis, corpus, export, preview
from lipjax.data import datasets


def run_study(builder: SyntheticLips, split: str, out_dir: pathlib.Path | None) -> dict:
    """The corpus checks of issue 2 on one split: delay recovery, closures, speakers; and the
    LMD a model blind to the injected delay could reach (`analysis.delay_blind_lmd`)."""
    source = builder.as_data_source(split=split)
    examples = [source[i] for i in range(len(source))]
    offsets = analysis.offset_study(examples)
    offsets_db = analysis.offset_study(examples, acoustic="energy_db")
    closures = [c for e in examples for c in analysis.bilabial_closures(e)]
    frames_by_speaker: dict[str, list[np.ndarray]] = {}
    for example in examples:
        frames = np.asarray(example["frames"])
        picks = frames[:: max(1, len(frames) // 4)][:4]
        frames_by_speaker.setdefault(preview._text(example["speaker"]), []).extend(picks)
    identity = analysis.speaker_identification(frames_by_speaker)
    corpus_config = CONFIGS[builder.builder_config.name]
    delays = range(corpus_config.min_delay_frames, corpus_config.max_delay_frames + 1)
    bound = analysis.delay_blind_lmd(examples, delays)
    summary = {
        "config": builder.builder_config.name,
        "split": split,
        "utterances": offsets["num_utterances"],
        "share_best_offset_at_injected_delay": offsets["share_at_injected_delay"],
        "share_best_offset_within_one_frame": offsets["share_within_one_frame"],
        "share_best_offset_at_injected_delay_energy_db": offsets_db["share_at_injected_delay"],
        "bilabials": len(closures),
        "share_bilabials_closed": float(np.mean([c["closed"] for c in closures]))
        if closures
        else float("nan"),
        **{f"speakers_{k}": v for k, v in identity.items()},
        "lmd_delay_blind": bound["delay_blind_lmd"],
        "lmd_static": bound["static_lmd"],
        "lmd_delay_blind_vs_static": bound["delay_blind_vs_static"],
    }
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"study_{split}.json").write_text(json.dumps(summary, indent=2))
        _plot_offsets(offsets, out_dir / f"offset_study_{split}.png")
    return summary


def _plot_offsets(offsets: dict, path: pathlib.Path) -> None:
    """The two panels of the paper's Fig. 4 on our corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for curve, delay in list(zip(offsets["curves"], offsets["injected_delays"], strict=True))[:6]:
        left.plot(curve, marker=".", label=f"injected {delay}")
    left.set(xlabel="offset (frames the lips lead)", ylabel="Pearson r",
             title="(a) opening vs envelope, examples")  # fmt: skip
    left.legend(fontsize=6)
    bins = np.arange(offsets["curves"].shape[1] + 1) - 0.5
    right.hist(offsets["injected_delays"], bins, alpha=0.5, label="injected delay")
    right.hist(offsets["best_offsets"], bins, alpha=0.5, label="best offset")
    right.set(xlabel="offset (frames)", ylabel="utterances", title="(b) best offset per video")
    right.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


COMMANDS = ("build", "preview", "export", "study")
# Flags besides --config, --data_dir and --num_workers that each command takes.
COMMAND_FLAGS = {
    "build": {"preview_dir"},
    "preview": {"out"},
    "export": {"out", "limit"},
    "study": {"out", "split"},
}
FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_string("config", "small", f"one of {sorted(CONFIGS)}")
    flags.DEFINE_string("data_dir", None, "TFDS data dir")
    flags.DEFINE_integer("num_workers", None, "build processes (default: one per core)")
    flags.DEFINE_string("preview_dir", None, "build: also write a preview here")
    flags.DEFINE_string("out", None, "output directory (preview, export: required; study)")
    flags.DEFINE_integer("limit", None, "export: utterances per split")
    flags.DEFINE_enum("split", "train", corpus.SPLITS, "study: the split")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"expected one command, one of {list(COMMANDS)}; got {argv[1:]}")
    command = argv[1]
    for name in set().union(*COMMAND_FLAGS.values()) - COMMAND_FLAGS[command]:
        if FLAGS[name].present:
            raise app.UsageError(f"--{name} does not apply to {command}")
    if command in ("preview", "export") and not FLAGS.out:
        raise app.UsageError(f"{command} needs --out=DIR")
    if FLAGS.config not in CONFIGS:
        raise app.UsageError(
            f"--config: unknown corpus {FLAGS.config!r}, expected one of {sorted(CONFIGS)}"
        )

    if command == "export":
        manifest = export.export(
            CONFIGS[FLAGS.config], FLAGS.out, limit_per_split=FLAGS.limit,
            num_workers=FLAGS.num_workers,
        )  # fmt: skip
        print(f"Wrote GRID-layout files and {manifest}")
        return
    builder = datasets.open_builder(
        f"synthetic_lips/{FLAGS.config}", FLAGS.data_dir, prepared=False,
        num_workers=FLAGS.num_workers,
    )  # fmt: skip
    if not builder.is_prepared():
        start = time.perf_counter()
        print(f"Building synthetic_lips/{FLAGS.config} in {builder.data_dir} ...", flush=True)
        builder.download_and_prepare()
        print(f"Built in {time.perf_counter() - start:.1f} s", flush=True)
    if command == "build":
        for split, info in builder.info.splits.items():
            print(f"  {split}: {info.num_examples} utterances")
    preview_dir = FLAGS.out if command == "preview" else FLAGS.preview_dir
    if preview_dir:
        written = preview.preview(builder.as_data_source(split="test"), preview_dir)
        print(f"Preview: {written['contact_sheet']} and {len(written['clips'])} clips")
    if command == "study":
        out = pathlib.Path(FLAGS.out) if FLAGS.out else None
        print(json.dumps(run_study(builder, FLAGS.split, out), indent=2))


if __name__ == "__main__":
    define_flags()
    app.run(main)
