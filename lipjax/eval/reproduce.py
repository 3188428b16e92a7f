"""Reruns the paper's Tables 2 and 3 on our corpus and writes `experiments/RESULTS.md`.

    python -m lipjax.cli.reproduce --workdir=runs/tables --steps=1000
    python -m lipjax.cli.reproduce --workdir=runs/tables --steps=1000 --only=table2_e,table3_chung

Every experiment (the nine columns of Table 2 and the two baselines of Table 3, all
`experiments/<name>.py:<variant>`, CPU-sized on synthetic_lips/small by default) is
trained for the same number of steps with the same seed, from ONE shared FlowNet and
perceptual-autoencoder pretraining (WORKDIR/pretrain), then its best checkpoint by
validation LMD is evaluated on the test split (unseen speakers) beside the static baseline
and the ground truth. Runs resume: a finished experiment is not trained or evaluated
again, an interrupted one goes on from its last checkpoint. The results file is rewritten
after every experiment; text under its "## Discussion" heading is kept.

Each finished experiment's record also goes to `experiments/results/<name>.json`, which is
committed: the table is filled over several sessions, and a row survives the loss of its
workdir. A record names the shared pretraining by a fingerprint of its weights, and is
reused only under the same steps, split, variant and pretraining.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import platform
import time
from typing import Any

import ml_collections
from absl import logging

from lipjax.configs import EXPERIMENTS_DIR, load_experiment
from lipjax.eval.report import HEADERS  # the metric column names of every lipjax table

RECORDS_DIR = EXPERIMENTS_DIR / "results"  # committed: one JSON record per finished experiment
TABLE_2 = tuple(f"table2_{column}" for column in "abcdefghi")
TABLE_3 = ("table3_chung", "table3_vondrick")
EXPERIMENTS = TABLE_2 + TABLE_3
METRICS = ("lmd", "ssim", "psnr", "cpbd", "lse_d", "lse_c")
# The paper's numbers on GRID (Table 2 columns; Table 3 GRID columns), for the ordering.
PAPER_GRID = {
    "table2_a": {"lmd": 1.24, "ssim": 0.77, "psnr": 29.36, "cpbd": 0.01},
    "table2_b": {"lmd": 1.31, "ssim": 0.71, "psnr": 29.79, "cpbd": 0.18},
    "table2_c": {"lmd": 1.38, "ssim": 0.72, "psnr": 29.66, "cpbd": 0.17},
    "table2_d": {"lmd": 1.31, "ssim": 0.70, "psnr": 29.80, "cpbd": 0.21},
    "table2_e": {"lmd": 1.18, "ssim": 0.73, "psnr": 29.98, "cpbd": 0.18},
    "table2_f": {"lmd": 1.96, "ssim": 0.52, "psnr": 28.6, "cpbd": 0.22},
    "table2_g": {"lmd": 1.39, "ssim": 0.68, "psnr": 29.59, "cpbd": 0.19},
    "table2_h": {"lmd": 1.42, "ssim": 0.59, "psnr": 29.46, "cpbd": 0.18},
    "table2_i": {"lmd": 1.40, "ssim": 0.66, "psnr": 29.51, "cpbd": 0.21},
    "table3_vondrick": {"lmd": 2.38, "ssim": 0.60, "psnr": 28.45, "cpbd": 0.129},
    "table3_chung": {"lmd": 1.35, "ssim": 0.74, "psnr": 29.36, "cpbd": 0.016},
    "ground_truth": {"lmd": 0.0, "cpbd": 0.141},
}
DISCUSSION = "## Discussion"


def fingerprint(tree: Any) -> str:
    """A short hash of a pytree of arrays (paths, dtypes, shapes and bytes): names the
    shared pretraining in every record, so rows of different pretrainings never mix."""
    import jax
    import numpy as np

    digest = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def pretraining_fingerprint(pretrained_dir: pathlib.Path) -> dict[str, str]:
    """Fingerprints of the FlowNet and perceptual checkpoints found in `pretrained_dir`."""
    from lipjax import checkpointing

    prints = {}
    for network in ("flownet", "perceptual"):
        if (pretrained_dir / network).is_dir():
            tree, _ = checkpointing.restore_tree(pretrained_dir / network)
            prints[network] = fingerprint(tree)
    return prints


# Records written since issue 24 carry this; the earlier ones were made with the choices
# that `configs.lipjax_v1` restores (docs/FIDELITY.md), i.e. under variant "synthetic_v1".
DEFAULTS_VERSION = "issue24"


def _recorded_variant(record: dict) -> str:
    # Records from before the variant was saved were all made with the default variant.
    variant = record.get("variant", "synthetic")
    if variant == "synthetic" and record.get("defaults") != DEFAULTS_VERSION:
        return "synthetic_v1"
    return variant


def _matches(record: dict, expected: dict[str, Any]) -> bool:
    """Whether a saved record was made under `expected`: the same steps, split and variant,
    and the same fingerprints for the pretrained networks the record says it used."""
    if record.get("steps") != expected["steps"] or record.get("split") != expected["split"]:
        return False
    if _recorded_variant(record) != expected["variant"]:
        return False
    used = record.get("pretraining", {})
    return all(expected["pretraining"].get(network) == print_ for network, print_ in used.items())


def _read_record(path: pathlib.Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (json.JSONDecodeError, OSError) as error:
        logging.warning("ignoring unreadable record %s: %s", path, error)
        return None


def kendall_tau(first: list[float], second: list[float]) -> float:
    """Kendall's rank correlation (tau-a) of two equally long score lists."""
    n = len(first)
    if n < 2:
        return float("nan")
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            product = (first[i] - first[j]) * (second[i] - second[j])
            concordant += product > 0
            discordant += product < 0
    return (concordant - discordant) / (n * (n - 1) / 2)


def _switches(config: ml_collections.ConfigDict) -> str:
    """The losses and discriminator of a config, in the paper's terms."""
    loss = config.loss
    architecture = config.model.get("architecture", "paper")
    parts = [] if architecture == "paper" else [architecture]
    parts += [name for name in ("pixel", "perceptual") if loss[name] > 0]
    if loss.correlation > 0:
        parts.append("corr" if loss.correlation_mode == "derivative" else "corr (non-deriv.)")
    if loss.adversarial > 0:
        parts.append(f"gen ({loss.discriminator})")
    return ", ".join(parts)


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if metric in ("lmd", "ssim", "cpbd") else f"{value:.2f}"


def _machine() -> str:
    import jax

    device = jax.devices()[0]
    kind = device.device_kind if device.platform != "cpu" else platform.processor() or "CPU"
    return (
        f"{len(jax.devices())} x {device.platform} ({kind}), {os.cpu_count()} host cores; "
        f"Python {platform.python_version()}, jax {jax.__version__}"
    )


def render(records: dict[str, dict], settings: dict[str, Any], discussion: str) -> str:
    """The markdown of RESULTS.md from the finished experiments' records."""
    lines = [
        "# The paper's tables on our synthetic corpus",
        "",
        "Generated by `lipjax.eval.reproduce`; rerun with:",
        "",
        "```bash",
        settings["command"],
        "```",
        "",
        f"- Dataset `{settings['dataset']}`, split `{settings['split']}` (unseen speakers); "
        f"config variant `{settings['variant']}` (CPU-sized models, see "
        f"`lipjax.configs.cpu_sized`), batch {settings['batch_size']}, "
        f"{settings['steps']} steps, seed {settings['seed']}, one shared FlowNet and "
        "perceptual pretraining; each row is the checkpoint with the best validation LMD.",
        f"- Machine: {settings['machine']}. Written {settings['date']}. Each row's record "
        "(with its own machine and date) is kept in `experiments/results/`.",
        "- LMD is measured with our lip-landmark regressor (synthetic data), CPBD is our own "
        "implementation, LSE-D/LSE-C come from our sync expert; the paper's columns are its "
        "GRID figures (dlib landmarks on real video), for the ordering only.",
    ]
    if settings.get("pretraining"):
        prints = ", ".join(f"{net} `{print_}`" for net, print_ in settings["pretraining"].items())
        lines.append(
            f"- Shared pretraining, weight fingerprints (`reproduce.fingerprint`): {prints}."
        )
    lines.append("")
    metrics = [m for m in METRICS if any(m in r["rows"]["model"] for r in records.values())]
    header = ["row", "losses", "steps", "train min"] + [HEADERS[m] for m in metrics]
    header += [f"paper {HEADERS[m]}" for m in ("lmd", "ssim", "psnr", "cpbd")]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    first = next(iter(records.values()), None)
    for row in ("static", "ground_truth"):
        if first is None:
            break
        values = first["rows"].get(row, {})
        paper = PAPER_GRID.get(row, {})
        cells = [row.replace("_", " "), "—", "—", "—"]
        cells += [_format(m, values.get(m)) for m in metrics]
        cells += [_format(m, paper.get(m)) for m in ("lmd", "ssim", "psnr", "cpbd")]
        lines.append("| " + " | ".join(cells) + " |")
    for name, record in records.items():
        values, paper = record["rows"]["model"], PAPER_GRID.get(name, {})
        cells = [name, record["losses"], str(record["steps"]), f"{record['train_minutes']:.0f}"]
        cells += [_format(m, values.get(m)) for m in metrics]
        cells += [_format(m, paper.get(m)) for m in ("lmd", "ssim", "psnr", "cpbd")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Ordering against the paper", ""]
    ranked = [n for n in records if n in PAPER_GRID]
    for metric, lower_better in (("lmd", True), ("ssim", False), ("psnr", False), ("cpbd", False)):
        names = [n for n in ranked if metric in records[n]["rows"]["model"]]
        if len(names) < 2:
            continue
        ours = [records[n]["rows"]["model"][metric] for n in names]
        theirs = [PAPER_GRID[n][metric] for n in names]
        order = sorted(names, key=lambda n: records[n]["rows"]["model"][metric])
        if not lower_better:
            order.reverse()
        lines.append(
            f"- {HEADERS[metric]}: ours best to worst {', '.join(order)}; Kendall's tau with "
            f"the paper's {kendall_tau(ours, theirs):+.2f} over {len(names)} rows."
        )
    lines += ["", DISCUSSION, "", discussion.strip() or "(to be written from the rows above)", ""]
    return "\n".join(lines)


def _existing_discussion(path: pathlib.Path) -> str:
    if not path.is_file():
        return ""
    text = path.read_text()
    return text.split(DISCUSSION, 1)[1] if DISCUSSION in text else ""


def _expected(
    steps: int, split: str, variant: str, pretraining: dict[str, str] | None
) -> dict[str, Any]:
    return {"steps": steps, "split": split, "variant": variant, "pretraining": pretraining or {}}


def _record_paths(name: str, workdir: pathlib.Path, records_dir: pathlib.Path | None):
    """Where a finished experiment's record may be: the committed one first."""
    if records_dir is not None:
        yield pathlib.Path(records_dir) / f"{name}.json"
    yield workdir / name / "reproduce.json"


def find_record(
    name: str, workdir: pathlib.Path, records_dir: pathlib.Path | None, expected: dict[str, Any]
) -> dict | None:
    """The record of `name` made under `expected`, committed or in its workdir; None if
    there is none (or only one of other settings or another pretraining)."""
    for path in _record_paths(name, workdir, records_dir):
        record = _read_record(path)
        if record is not None and _matches(record, expected):
            return record
    return None


def run_experiment(
    name: str,
    config: ml_collections.ConfigDict,
    workdir: pathlib.Path,
    split: str,
    sync: bool,
    *,
    variant: str = "synthetic",
    pretraining: dict[str, str] | None = None,
    records_dir: pathlib.Path | None = None,
) -> dict | None:
    """Trains (or resumes) one experiment and evaluates its best checkpoint on `split`;
    returns its record (the saved one when it is already finished under the same settings
    and `pretraining` fingerprints), or None when the training was stopped (SIGTERM/SIGINT)
    before its last step."""
    from lipjax.eval import report
    from lipjax.train import trainer

    expected = _expected(config.num_steps, split, variant, pretraining)
    record = find_record(name, workdir, records_dir, expected)
    if record is not None:
        # Records written before records carried their settings were made in this workdir,
        # from its pretraining: complete them, and commit them where they are not yet.
        record = {"variant": variant, "pretraining": dict(pretraining or {}), **record}
        _save_record(record, name, workdir, records_dir)
        return record
    # Training minutes add up over the invocations of an interrupted and resumed run.
    (workdir / name).mkdir(parents=True, exist_ok=True)
    minutes_path = workdir / name / "train_minutes.json"
    minutes = json.loads(minutes_path.read_text()) if minutes_path.is_file() else 0.0
    started = time.perf_counter()
    trained = trainer.train_and_evaluate(config, str(workdir / name))
    minutes += (time.perf_counter() - started) / 60
    minutes_path.write_text(json.dumps(minutes))
    if trained["step"] < config.num_steps:
        return None
    summary = report.run(
        config,
        str(workdir / name / "best"),
        split,
        workdir / name / f"eval_{split}",
        sync_expert="" if sync else None,
    )
    record = {
        "steps": config.num_steps,
        "split": split,
        "variant": variant,
        "defaults": DEFAULTS_VERSION,
        "losses": _switches(config),
        "train_minutes": minutes,
        "rows": summary["rows"],
        "num_clips": summary["num_clips"],
        "pretraining": dict(pretraining or {}),
        "machine": _machine(),
        "date": datetime.date.today().isoformat(),
    }
    _save_record(record, name, workdir, records_dir)
    return record


def _save_record(
    record: dict, name: str, workdir: pathlib.Path, records_dir: pathlib.Path | None
) -> None:
    """Writes `record` to the workdir and to `records_dir`, leaving identical files alone."""
    for path in _record_paths(name, workdir, records_dir):
        if _read_record(path) != record:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=2) + "\n")


def collect(
    workdir: pathlib.Path,
    steps: int,
    split: str,
    *,
    variant: str = "synthetic",
    pretraining: dict[str, str] | None = None,
    records_dir: pathlib.Path | None = None,
) -> dict[str, dict]:
    """Records of every experiment finished with `steps` steps on `split` (committed in
    `records_dir` or in `workdir`), in the tables' order."""
    expected = _expected(steps, split, variant, pretraining)
    records = {}
    for name in EXPERIMENTS:
        record = find_record(name, pathlib.Path(workdir), records_dir, expected)
        if record is not None:
            records[name] = record
    return records


def reproduce(
    workdir: str | pathlib.Path,
    *,
    steps: int,
    names: tuple[str, ...] = EXPERIMENTS,
    variant: str = "synthetic",
    split: str = "test",
    data_dir: str = "",
    pretrained: str = "",
    results: str | pathlib.Path = EXPERIMENTS_DIR / "RESULTS.md",
    sync: bool = True,
    records_dir: str | pathlib.Path | None = RECORDS_DIR,
) -> dict[str, dict]:
    """Trains and evaluates `names`, rewriting `results` after each; returns the records of
    every experiment finished under these settings and this pretraining, in `workdir` or
    committed in `records_dir` (None: the workdir only)."""
    from lipjax.train import pretrain_flownet, pretrain_perceptual, train_step, trainer

    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"experiments: unknown {unknown}; known: {list(EXPERIMENTS)}")
    command = f"python -m lipjax.cli.reproduce --workdir={workdir} --steps={steps}"
    if variant != "synthetic":
        command += f" --variant={variant}"
    if pretrained:
        command += f" --pretrained={pretrained}"
    workdir = pathlib.Path(workdir).absolute()
    configs = {name: load_experiment(name, variant) for name in names}
    pretrained_dir = pathlib.Path(pretrained or workdir / "pretrain").absolute()
    for config in configs.values():
        config.num_steps = steps
        if data_dir:
            config.data_dir = data_dir
        config.flownet.checkpoint = str(pretrained_dir / "flownet")
        config.perceptual.checkpoint = str(pretrained_dir / "perceptual")
    first = configs[names[0]]
    trainer.ensure_dataset(first)
    # Pretrain only what some experiment uses (Chung's baseline needs neither); both return
    # at once when their checkpoints are already there.
    networks = [train_step.build_networks(config) for config in configs.values()]
    if any(n.flownet is not None for n in networks):
        pretrain_flownet.run(first, pretrained_dir)
    if any(n.perceptual is not None for n in networks):
        pretrain_perceptual.run(first, pretrained_dir)
    pretraining = pretraining_fingerprint(pretrained_dir)
    records_dir = pathlib.Path(records_dir) if records_dir is not None else None
    found = {"variant": variant, "pretraining": pretraining, "records_dir": records_dir}

    results = pathlib.Path(results)
    settings = {
        "command": command,
        "dataset": first.dataset,
        "split": split,
        "variant": variant,
        "batch_size": first.batch_size,
        "steps": steps,
        "seed": first.seed,
        "machine": _machine(),
        "date": datetime.date.today().isoformat(),
        "pretraining": pretraining,
    }
    for name in names:
        print(f"== {name}: {steps} steps in {workdir / name}", flush=True)
        used = {
            network: print_
            for network, print_ in pretraining.items()
            if getattr(train_step.build_networks(configs[name]), network) is not None
        }
        record = run_experiment(
            name,
            configs[name],
            workdir,
            split,
            sync,
            variant=variant,
            pretraining=used,
            records_dir=records_dir,
        )
        if record is None:
            print(f"   stopped before step {steps}; the same command resumes it", flush=True)
            break
        # Read the discussion at each write, not once at the start: people edit it while
        # the experiments (hours) run, and those edits must survive the next row.
        discussion = _existing_discussion(results)
        results.write_text(render(collect(workdir, steps, split, **found), settings, discussion))
        lmd = record["rows"]["model"].get("lmd", float("nan"))
        print(f"   {split} LMD {lmd:.3f}; wrote {results}", flush=True)
    return collect(workdir, steps, split, **found)
