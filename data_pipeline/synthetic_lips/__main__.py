"""Command line of the synthetic corpus.

python -m data_pipeline.synthetic_lips build   --config=small [--data_dir=DIR] [--preview_dir=DIR]
python -m data_pipeline.synthetic_lips preview --config=small --out=DIR
python -m data_pipeline.synthetic_lips export  --config=tiny  --out=DIR [--limit=N]
python -m data_pipeline.synthetic_lips study   --config=small --split=train [--out=DIR]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from data_pipeline.synthetic_lips import CONFIGS, SyntheticLips, analysis, corpus, export, preview


def load_builder(config: str, data_dir: str | None, num_workers: int | None) -> SyntheticLips:
    """The builder of one config, built (prepared) if it is not on disk yet."""
    builder = SyntheticLips(config=config, data_dir=data_dir, num_workers=num_workers)
    if not builder.is_prepared():
        start = time.perf_counter()
        print(f"Building synthetic_lips/{config} in {builder.data_dir} ...", flush=True)
        builder.download_and_prepare()
        print(f"Built in {time.perf_counter() - start:.1f} s", flush=True)
    return builder


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.synthetic_lips")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "preview", "export", "study"):
        command = commands.add_parser(name)
        command.add_argument("--config", default="small", help=f"one of {sorted(CONFIGS)}")
        command.add_argument("--data_dir", default=None, help="TFDS data dir")
        command.add_argument("--num_workers", type=int, default=None, help="build processes")
        if name == "build":
            command.add_argument("--preview_dir", default=None, help="also write a preview")
        if name in ("preview", "export", "study"):
            command.add_argument("--out", required=name != "study", help="output directory")
        if name == "export":
            command.add_argument("--limit", type=int, default=None, help="utterances per split")
        if name == "study":
            command.add_argument("--split", default="train", choices=corpus.SPLITS)
    args = parser.parse_args(argv)
    if args.config not in CONFIGS:
        parser.error(f"--config: unknown corpus {args.config!r}, expected one of {sorted(CONFIGS)}")

    if args.command == "export":
        manifest = export.export(
            CONFIGS[args.config], args.out, limit_per_split=args.limit,
            num_workers=args.num_workers,
        )  # fmt: skip
        print(f"Wrote GRID-layout files and {manifest}")
        return 0
    builder = load_builder(args.config, args.data_dir, args.num_workers)
    if args.command == "build":
        for split, info in builder.info.splits.items():
            print(f"  {split}: {info.num_examples} utterances")
    preview_dir = args.out if args.command == "preview" else getattr(args, "preview_dir", None)
    if preview_dir:
        written = preview.preview(builder.as_data_source(split="test"), preview_dir)
        print(f"Preview: {written['contact_sheet']} and {len(written['clips'])} clips")
    if args.command == "study":
        out = pathlib.Path(args.out) if args.out else None
        print(json.dumps(run_study(builder, args.split, out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
