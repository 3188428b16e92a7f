"""Evaluates a trained lip generator on a split: tables, per-speaker breakdown and plots.

    python -m lipjax.cli.evaluate --checkpoint=runs/synthetic --split=test --workdir=runs/eval
    python -m lipjax.cli.evaluate --config=experiments/synthetic.py:long \\
        --checkpoint=runs/long/best --split=test --workdir=runs/long_eval

Without --config the run's own config.json (beside its checkpoints) is used, laid over
today's defaults. Rows: the model, the static baseline (identity image repeated) and the
ground truth; metrics: LMD, PSNR, SSIM, CPBD, and LSE-D / LSE-C / offset of the lip-sync
expert (lipjax.eval.lip_sync; the shipped one is trained on synthetic_lips/small). LMD uses
the lip-landmark regressor on synthetic_lips and, on the real corpora, dlib on the crops
pasted back into their source frames (lipjax.eval.real_lmd; --manual_dir, default the config's
manual_dir, names where the videos are; without one LMD is left out). WORKDIR receives:

  results.md          the table, the paper's Table 3 beside it, and the per-speaker table
  results.csv         one line per row (model, static, ground_truth)
  per_speaker.csv     the same per speaker
  per_clip.csv        every window's metrics and ids
  metric_distributions.png, lmd_per_speaker.png, samples.png
  samples/            real | generated | identity clips as GIF and mp4 with their speech
"""

from __future__ import annotations

import csv
import functools
import json
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import flags, logging

from lipjax import checkpointing, configs
from lipjax.data import audio, datasets, pipeline
from lipjax.eval import evaluation, landmark_regressor
from lipjax.train import train_step, trainer

METRICS = (
    "lmd",
    "opening_corr",
    "psnr",
    "ssim",
    "psnr_paper",
    "ssim_paper",
    "cpbd",
    "lse_d",
    "lse_c",
    "sync_offset",
)
HEADERS = {
    "lmd": "LMD ↓",
    "opening_corr": "opening r ↑",
    "psnr": "PSNR ↑",
    "ssim": "SSIM ↑",
    "psnr_paper": "PSNR grey ↑",  # the authors' protocol (docs/FIDELITY.md)
    "ssim_paper": "SSIM grey 7x7 ↑",
    "cpbd": "CPBD ↑",
    "lse_d": "LSE-D ↓",
    "lse_c": "LSE-C ↑",
    "sync_offset": "offset (frames)",
}
ROW_NAMES = {
    "model": "model",
    "static": "static (identity repeated)",
    "ground_truth": "ground truth",
}
# Table 3 of the paper, full model (GRID / LDC / LRW), docs/design.md, "The paper's results".
PAPER_FULL_MODEL = {
    "GRID": {"lmd": 1.18, "ssim": 0.73, "psnr": 29.89, "cpbd": 0.175},
    "LDC": {"lmd": 1.82, "ssim": 0.57, "psnr": 28.87, "cpbd": 0.172},
    "LRW": {"lmd": 1.92, "ssim": 0.53, "psnr": 28.65, "cpbd": 0.075},
}
CONFIG_FILE = "config.json"
WINDOW = pipeline.WINDOW_FRAMES


# ---------------------------------------------------------------- config and model


def _merge(base: ml_collections.ConfigDict, values: dict, path: str = "") -> list[str]:
    """Lays `values` over `base` in place; returns the keys `base` does not know."""
    unknown = []
    for key, value in values.items():
        if key not in base:
            unknown.append(path + key)
        elif isinstance(value, dict) and isinstance(base[key], ml_collections.ConfigDict):
            unknown += _merge(base[key], value, f"{path}{key}.")
        else:
            base[key] = value
    return unknown


def find_run_config(checkpoint: str | pathlib.Path) -> pathlib.Path:
    """The config.json of the run a checkpoint belongs to (in it or up to 3 folders up)."""
    path = pathlib.Path(checkpoint).absolute()
    for folder in [path, *list(path.parents)[:3]]:
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
    raise FileNotFoundError(
        f"checkpoint: no {CONFIG_FILE} in {path} or the folders above it; pass --config"
    )


def config_from_json(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """A run's saved config over today's defaults (fields added since keep their default)."""
    config = configs.base_config()
    unknown = _merge(config, json.loads(pathlib.Path(path).read_text()))
    if unknown:
        logging.warning("%s: ignoring fields today's config does not have: %s", path, unknown)
    return config


def load_generator(config: ml_collections.ConfigDict, checkpoint: str, step: int | None = None):
    """(networks, variables) of a checkpoint, after checking that its generator has the
    shapes of the generator `config` builds."""
    networks = train_step.build_networks(config)
    variables = checkpointing.load_params(checkpoint, step)
    inputs = train_step.example_inputs(1)
    expected = jax.eval_shape(
        lambda: networks.generator.init(
            jax.random.key(0), inputs["audio"], inputs["identity"], train=False
        )
    )
    loaded = {
        "params": variables["params"]["generator"],
        "batch_stats": variables["batch_stats"].get("generator", {}),
    }
    expected = {k: expected.get(k, {}) for k in loaded}
    shapes = [
        {
            jax.tree_util.keystr(path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
        }
        for tree in (expected, loaded)
    ]
    differing = sorted(
        k for k in shapes[0].keys() | shapes[1].keys() if shapes[0].get(k) != shapes[1].get(k)
    )
    if differing:
        first = [f"{k}: {shapes[1].get(k)} saved, {shapes[0].get(k)} built" for k in differing[:3]]
        raise ValueError(
            f"checkpoint {checkpoint}: its generator does not match the config's "
            f"({len(differing)} arrays differ, e.g. {'; '.join(first)}); pass the --config "
            "it was trained with"
        )
    return networks, variables


def _model_log_mel_stats(config: ml_collections.ConfigDict, checkpoint: str) -> audio.LogMelStats:
    """The generator's audio normalisation: the config's, or where it leaves it unset (an
    experiments/ file given for a run) the one saved with the checkpoint's run."""
    if config.model.get("log_mel_mean") is None:
        try:
            return audio.model_log_mel_stats(config_from_json(find_run_config(checkpoint)).model)
        except FileNotFoundError:
            pass
    return audio.model_log_mel_stats(config.model)


# ---------------------------------------------------------------- the evaluation


def run(
    config: ml_collections.ConfigDict,
    checkpoint: str,
    split: str,
    workdir: str | pathlib.Path,
    *,
    step: int | None = None,
    sync_expert: str | None = "",
    sharpness: bool = True,
    max_batches: int = 0,
    num_samples: int = 4,
    manual_dir: str | None = None,
) -> dict:
    """Evaluates `checkpoint` on `split` and writes the tables and plots to `workdir`.

    `sync_expert`: "" for the shipped expert, a path, or None for no LSE metrics.
    `manual_dir` (real corpora; None: `config.manual_dir`, "": none): the corpus's videos,
    for the paper's LMD with dlib on crops pasted back; without it LMD is left out.
    Returns {"rows": {row: {metric: mean}}, "num_clips": ..., "files": [...]}.
    """
    workdir = trainer.prepare_workdir(str(workdir))
    trainer.ensure_dataset(config)
    data_dir = config.data_dir or None
    networks, variables = load_generator(config, checkpoint, step)
    generate_fn = jax.jit(functools.partial(train_step.generate_videos, networks))

    def generate(batch):
        return generate_fn(
            variables["params"], variables["batch_stats"], batch["audio"], batch["identity"]
        )

    batches = pipeline.create_eval_iterator(
        config.dataset,
        split,
        data_dir,
        global_batch_size=config.batch_size,
        cache_dir=workdir / "data_index",
        num_data_devices=1,
        audio_lookahead=config.model.audio_lookahead_frames,
        log_mel_stats=_model_log_mel_stats(config, checkpoint),
    )
    source = datasets.open_split(config.dataset, split, data_dir)
    sync = sync_audio = None
    if sync_expert is not None:
        from lipjax.eval import lip_sync as sync_module

        sync = sync_module.SyncScorer(sync_expert or None)
        context = int(sync.offsets.max())

        @functools.lru_cache(maxsize=64)
        def utterance_audio(index: int) -> np.ndarray:
            # The expert's own normalisation (the fixed one), whatever the generator's.
            return pipeline.normalize_log_mel(np.asarray(source[index]["log_mel"]))[..., 0]

        def sync_audio(batch, valid):
            """Each window's audio with `context` frames either side, from its utterance."""
            ids = zip(batch["utterance_index"][valid], batch["start_frame"][valid], strict=True)
            audio = [
                sync_module.audio_around(utterance_audio(int(u)), int(s), WINDOW, context)
                for u, s in ids
            ]
            return np.stack(audio), -context

    synthetic = config.dataset.startswith("synthetic_lips")
    landmarks = evaluation.LandmarkScorer() if synthetic else None
    frame_lmd, lmd_note = None, LMD_NOTE_SYNTHETIC
    if not synthetic:
        frame_lmd, lmd_note = _real_lmd(config, source, manual_dir)
    result = evaluation.evaluate(
        generate,
        batches,
        landmarks,
        num_samples=num_samples,
        max_batches=max_batches,
        sharpness=sharpness,
        sync=sync,
        sync_audio=sync_audio,
        frame_lmd=frame_lmd,
    )
    if frame_lmd is not None:
        lmd_note += f" dlib: {frame_lmd.summary()}."
        logging.info("LMD (dlib on pasted crops): %s", frame_lmd.summary())
    index = pipeline.window_index(config.dataset, split, data_dir, cache_dir=workdir / "data_index")
    speakers = index.speaker_names
    info = {
        "checkpoint": str(pathlib.Path(checkpoint).absolute()),
        "dataset": config.dataset,
        "split": split,
        "num_clips": result.num_clips,
        "sync_expert": "none" if sync is None else (sync_expert or "shipped"),
        "lmd": lmd_note,
    }
    files = write_outputs(result, speakers, info, workdir)
    files += trainer.write_samples(result, source, 0, workdir / "samples")
    return {"rows": result.rows(), "num_clips": result.num_clips, "files": files}


LMD_NOTE_SYNTHETIC = (
    "LMD (paper Eq. 5, mean over the 20 mouth points, crop pixels) uses the lip-landmark regressor."
)


def _real_lmd(config: ml_collections.ConfigDict, source, manual_dir: str | None):
    """(the dlib LMD scorer or None, a sentence on LMD) for a real corpus."""
    from lipjax.eval import real_lmd

    if manual_dir is None:
        manual_dir = config.get("manual_dir", "")
    if not manual_dir:
        reason = (
            "LMD left out: the paper's LMD runs dlib on the generated crops pasted back into "
            "their source frames, and no manual_dir (--manual_dir or config.manual_dir) names "
            "where the videos are."
        )
        logging.warning(reason)
        return None, reason
    try:
        scorer = real_lmd.RealLmdScorer(manual_dir, source)
    except (ValueError, FileNotFoundError) as error:
        reason = f"LMD left out: {error}."
        logging.warning(reason)
        return None, reason
    return scorer, (
        "LMD (paper Eq. 5, mean over the 20 mouth points): dlib on the crops pasted back "
        f"into their source frames from {manual_dir}, in source-frame pixels "
        "(lipjax.eval.real_lmd); "
        "the ground truth's is 0 by definition."
    )


# ---------------------------------------------------------------- outputs


def _format(metric: str, value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    if metric == "psnr":
        return f"{value:.2f}"
    three_places = ("ssim", "ssim_paper", "cpbd", "lmd", "opening_corr")
    return f"{value:.3f}" if metric in three_places else f"{value:.2f}"


def _present_metrics(rows: dict[str, dict[str, float]]) -> list[str]:
    return [m for m in METRICS if any(m in values for values in rows.values())]


def _finite_mean(values: np.ndarray) -> float:
    """The mean of the clips a metric could score (NaN: dlib found no face in any frame)."""
    finite = values[np.isfinite(values)]
    return float(np.mean(finite)) if finite.size else float("nan")


def per_speaker(result: evaluation.EvalResult, speakers: dict[int, str]) -> list[dict[str, Any]]:
    """Mean metrics per (speaker, row): dicts with speaker, row, clips and the metrics."""
    ids = result.per_clip["speaker_id"]
    lines = []
    for speaker in sorted(set(ids.tolist()), key=lambda s: speakers.get(s, str(s))):
        chosen = ids == speaker
        for row in evaluation.ROWS:
            values = {
                metric: _finite_mean(result.per_clip[f"{row}_{metric}"][chosen])
                for metric in METRICS
                if f"{row}_{metric}" in result.per_clip
            }
            if values:
                name = speakers.get(speaker, str(speaker))
                lines.append({"speaker": name, "row": row, "clips": int(chosen.sum()), **values})
    return lines


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
    metrics = _present_metrics(rows)
    lines = [
        "| row | " + " | ".join(HEADERS[m] for m in metrics) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    for row, values in rows.items():
        cells = [_format(m, values.get(m)) for m in metrics]
        lines.append(f"| {ROW_NAMES[row]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_csv(path: pathlib.Path, records: list[dict[str, Any]]) -> pathlib.Path:
    fields = list(dict.fromkeys(key for record in records for key in record))
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
    return path


def write_outputs(
    result: evaluation.EvalResult, speakers: dict[int, str], info: dict, workdir: pathlib.Path
) -> list[pathlib.Path]:
    """results.md, results.csv, per_speaker.csv, per_clip.csv and the plots."""
    rows = result.rows()
    metrics = _present_metrics(rows)
    files = [
        _write_csv(
            workdir / "results.csv",
            [{"row": row, "clips": result.num_clips, **values} for row, values in rows.items()],
        )
    ]
    speaker_lines = per_speaker(result, speakers)
    files.append(_write_csv(workdir / "per_speaker.csv", speaker_lines))
    clips = [
        {
            "speaker": speakers.get(int(result.per_clip["speaker_id"][i]), ""),
            **{k: v[i].item() for k, v in result.per_clip.items()},
        }
        for i in range(result.num_clips)
    ]
    files.append(_write_csv(workdir / "per_clip.csv", clips))

    regressor = _landmark_regressor_error()
    text = [
        f"# Evaluation of {info['checkpoint']}",
        "",
        f"{info['dataset']}, split `{info['split']}`: {info['num_clips']} windows of 16 frames "
        f"(hop 8), identity = the utterance's first frame. Sync expert: {info['sync_expert']}.",
        "",
        markdown_table(rows),
        "",
        info.get("lmd", LMD_NOTE_SYNTHETIC) + " PSNR and SSIM (colour: mean of R, G, B) are "
        "against the real clip, so the ground-truth row has none; CPBD is Narvekar & Karam's "
        "sharpness; LSE-D / LSE-C are SyncNet-style distance and confidence of our expert "
        "(unit embeddings, distances in [0, 2]), offset = frames by which the lips lead the "
        "audio." + (regressor if info["dataset"].startswith("synthetic_lips") else ""),
        "",
        *(
            []
            if info["dataset"].startswith("synthetic_lips")
            else [
                "**Caution:** the sync expert was trained on synthetic_lips/small.",
                "",
            ]
        ),
        "The paper's full model (Table 3), on real corpora, for scale only:",
        "",
        markdown_table_paper(),
        "",
        "## Per speaker",
        "",
        "| speaker | row | clips | " + " | ".join(HEADERS[m] for m in metrics) + " |",
        "| --- | --- | --- |" + " --- |" * len(metrics),
    ]
    for line in speaker_lines:
        cells = [_format(m, line.get(m)) for m in metrics]
        text.append(
            f"| {line['speaker']} | {line['row']} | {line['clips']} | " + " | ".join(cells) + " |"
        )
    (workdir / "results.md").write_text("\n".join(text) + "\n")
    files.append(workdir / "results.md")
    files += plot(result, speaker_lines, workdir)
    return files


def _landmark_regressor_error() -> str:
    """A sentence on the shipped landmark regressor's own LMD on unseen speakers."""
    path = landmark_regressor.shipped_regressor_path().parent / landmark_regressor.REPORT_NAME
    if not path.is_file():
        return ""
    test = json.loads(path.read_text()).get("test", {})
    if "lmd_px" not in test:
        return ""
    return (
        f" The landmark regressor's own LMD against the true landmarks of unseen speakers is "
        f"{test['lmd_px']:.2f} px (static baseline with true landmarks: "
        f"{test.get('static_lmd_true_landmarks_px', float('nan')):.2f} px)."
    )


def markdown_table_paper() -> str:
    metrics = ("lmd", "psnr", "ssim", "cpbd")
    lines = [
        "| corpus | " + " | ".join(HEADERS[m] for m in metrics) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    for corpus, values in PAPER_FULL_MODEL.items():
        lines.append(f"| {corpus} | " + " | ".join(_format(m, values[m]) for m in metrics) + " |")
    return "\n".join(lines)


def plot(result: evaluation.EvalResult, speaker_lines, workdir: pathlib.Path) -> list:
    """Per-clip metric distributions per row, LMD per speaker, and real vs generated frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if any(f"{r}_{m}" in result.per_clip for r in evaluation.ROWS)]
    columns = min(4, len(metrics))
    grid_rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(grid_rows, columns, figsize=(3.2 * columns, 2.8 * grid_rows + 0.4))
    axes = np.atleast_1d(axes).reshape(-1)
    for axis in axes[len(metrics) :]:
        axis.set_visible(False)
    for axis, metric in zip(axes, metrics, strict=False):
        for row in evaluation.ROWS:
            values = result.per_clip.get(f"{row}_{metric}")
            if values is not None and np.isfinite(values).any():
                axis.hist(values[np.isfinite(values)], bins=20, alpha=0.5, label=row)
        axis.set(title=HEADERS[metric], xlabel="per clip", ylabel="clips")
    labels = {}
    for axis in axes:
        labels.update(zip(*reversed(axis.get_legend_handles_labels()), strict=True))
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (2.8 * grid_rows + 0.4)))
    figure.legend(labels.values(), labels.keys(), loc="upper center", ncol=3, fontsize=8)
    files = [workdir / "metric_distributions.png"]
    figure.savefig(files[-1], dpi=100)
    plt.close(figure)

    lmd = [line for line in speaker_lines if "lmd" in line]
    if lmd:
        names = list(dict.fromkeys(line["speaker"] for line in lmd))
        figure, axis = plt.subplots(figsize=(max(4, 0.6 * len(names) + 2), 3))
        for offset, row in ((-0.2, "model"), (0.2, "static")):
            values = {line["speaker"]: line["lmd"] for line in lmd if line["row"] == row}
            axis.bar(np.arange(len(names)) + offset, [values.get(n, 0) for n in names], 0.4,
                     label=row)  # fmt: skip
        axis.set_xticks(np.arange(len(names)), names, rotation=45)
        axis.set(ylabel="LMD (px)", title="LMD per speaker")
        axis.legend(fontsize=7)
        figure.tight_layout()
        files.append(workdir / "lmd_per_speaker.png")
        figure.savefig(files[-1], dpi=100)
        plt.close(figure)

    samples = result.samples
    count = len(samples["real"])
    shown = range(0, samples["real"].shape[1], 3)
    figure, axes = plt.subplots(2 * count, len(shown), figsize=(1.1 * len(shown), 2.3 * count))
    axes = np.asarray(axes).reshape(2 * count, len(shown))
    for clip in range(count):
        for column, frame in enumerate(shown):
            for offset, kind in enumerate(("real", "generated")):
                axis = axes[2 * clip + offset, column]
                axis.imshow(samples[kind][clip, frame])
                axis.set_xticks([])
                axis.set_yticks([])
                if column == 0:
                    axis.set_ylabel(kind, fontsize=7)
                if clip == 0 and offset == 0:
                    axis.set_title(f"frame {frame}", fontsize=7)
    figure.tight_layout()
    files.append(workdir / "samples.png")
    figure.savefig(files[-1], dpi=100)
    plt.close(figure)
    return files


# ---------------------------------------------------------------- command line

FLAGS = flags.FLAGS
