"""Runs every speed benchmark of the model and writes `benchmarks/RESULTS.md`.

    python benchmarks/run_all.py                  # all scripts on this machine's backend
    python benchmarks/run_all.py --quick          # tiny sizes: checks the scripts run
    python benchmarks/run_all.py --only train_step,generate_speed
    python benchmarks/run_all.py --assemble_only  # RESULTS.md from the saved results

Each script runs as a subprocess and saves its tables as JSON in `--results_dir`, one file
per script and backend (`train_step.gpu.json`, `train_step.cpu.json`, ...; any file named
`<script>.<backend>.<part>.json` is merged in as well). RESULTS.md is then assembled from
every file there, so GPU figures taken on one machine and CPU figures taken on another end
up in one report; rows of a backend with no results say "not measured". `--quick` writes
to a temporary directory, never to benchmarks/: its figures are not results.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import measure
from absl import app, flags

BENCHMARKS = pathlib.Path(__file__).resolve().parent
SCRIPTS = ("train_step", "generate_speed", "upsampling", "peer", "scaling")
SECTIONS = {
    "train_step": "Training step",
    "generate_speed": "generate()",
    "upsampling": "Up-sampling: transposed or sub-pixel",
    "peer": "Against a PyTorch peer",
    "scaling": "Scaling over devices and processes",
}
PLATFORM_ORDER = ("gpu", "tpu", "cpu")
GIB_16 = 16 * 2**30


def probe_platform() -> str:
    measure.keep_off_accelerator_memory()
    return measure.platform_name()


def run_script(name: str, json_path: pathlib.Path, quick: bool, timeout: float) -> tuple:
    """(return code, seconds, command) of one benchmark script, its output streamed."""
    command = [sys.executable, str(BENCHMARKS / f"{name}.py"), f"--json={json_path}"]
    if quick:
        command.append("--quick")
    env = dict(measure.ORIGINAL_ENV)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(measure.REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    start = time.perf_counter()
    try:
        code = subprocess.run(command, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    shown = " ".join(["python", f"benchmarks/{name}.py", *(["--quick"] if quick else [])])
    return code, time.perf_counter() - start, shown


# ------------------------------------------------------------------------ assembly


def load_results(results_dir: pathlib.Path) -> dict[str, dict[str, list[dict]]]:
    """{script: {platform: [payload, ...]}} from `<script>.<platform>[.<part>].json`."""
    found: dict[str, dict[str, list[dict]]] = {}
    for path in sorted(results_dir.glob("*.json")):
        script, _, rest = path.stem.partition(".")
        platform = rest.split(".")[0]
        if script in SCRIPTS and platform:
            payload = json.loads(path.read_text())
            found.setdefault(script, {}).setdefault(platform, []).append(payload)
    return found


def merged_tables(by_platform: dict[str, list[dict]]) -> list[measure.Table]:
    """The script's tables with the rows of every platform; placeholder rows ("not
    measured: no GPU ...") are dropped where that platform's rows are present. Notes
    that differ between platforms are prefixed with the platform's name."""
    order = {name: index for index, name in enumerate(PLATFORM_ORDER)}
    platforms = sorted(by_platform, key=lambda p: order.get(p, len(order)))
    tables: list[measure.Table] = []
    notes: list[dict[str, list[str]]] = []  # per table: platform -> notes
    for platform in platforms:
        for payload in by_platform[platform]:
            for index, raw in enumerate(payload["tables"]):
                table = measure.Table(**raw)
                if index >= len(tables):
                    tables.append(measure.Table(table.title, table.columns))
                    notes.append({})
                tables[index].rows.extend(
                    row for row in table.rows if not (measure.NO_GPU in row and "gpu" in platforms)
                )
                tables[index].figures.update(
                    {f"{platform}:{key}": value for key, value in table.figures.items()}
                )
                kept = notes[index].setdefault(platform, [])
                kept.extend(note for note in table.notes if note not in kept)
    for table, by_platform_notes in zip(tables, notes, strict=True):
        everywhere = [
            note
            for note in next(iter(by_platform_notes.values()), [])
            if all(note in kept for kept in by_platform_notes.values())
        ]
        table.notes.extend(everywhere)
        for platform, kept in by_platform_notes.items():
            table.notes.extend(
                f"{platform.upper()}: {note}" for note in kept if note not in everywhere
            )
    return tables


def targets_table(results: dict[str, dict[str, list[dict]]]) -> measure.Table:
    """Issue 7's targets on one H100 or H200 against the measured GPU figures."""
    table = measure.Table("Targets (one H100 or H200)", ["target", "measured", "met"])
    train = _figures(results, "train_step", 0)
    alone = _figures(results, "generate_speed", 0)

    def add(target: str, value: str | None, met: bool | None) -> None:
        if value is None:
            table.rows.append([target, measure.NO_GPU, ""])
        else:
            table.rows.append([target, value, {True: "yes", False: "**no**"}[bool(met)]])

    step = train.get("gpu:grid_bf16", {})
    if "clips_per_s" in step:
        mfu = step.get("mfu")
        mfu_text = f", MFU {100 * mfu:.1f}%" if mfu is not None else ""
        add(
            "paper-size training, batch 24, bf16: >= 300 clips/s or MFU >= 35%",
            f"{step['clips_per_s']:.0f} clips/s{mfu_text}",
            step["clips_per_s"] >= 300 or (mfu or 0) >= 0.35,
        )
        peak = step.get("peak_bytes")
        add(
            "batch 24 fits in 16 GiB",
            measure.gib(peak) if peak else "n/a",
            peak is not None and peak <= GIB_16,
        )
    else:
        add("paper-size training, batch 24, bf16: >= 300 clips/s or MFU >= 35%", None, None)
        add("batch 24 fits in 16 GiB", None, None)
    generator = alone.get("gpu:grid_bf16", {})
    if generator:
        add(
            "generator, batched: >= 20,000 frames/s",
            f"{generator['best_frames_per_s']:,.0f} frames/s (bf16, best batch)",
            generator["best_frames_per_s"] >= 20_000,
        )
        latency = generator.get("latency_s")
        add(
            "one 16-frame clip in <= 5 ms",
            f"{1e3 * latency:.2f} ms" if latency else "n/a",
            latency is not None and latency <= 0.005,
        )
    else:
        add("generator, batched: >= 20,000 frames/s", None, None)
        add("one 16-frame clip in <= 5 ms", None, None)
    return table


def _figures(results, script: str, table_index: int) -> dict:
    tables = merged_tables(results.get(script, {}))
    return tables[table_index].figures if len(tables) > table_index else {}


def other_work_cell(env: dict) -> str:
    """Cores other processes kept busy while a script measured (older results: the load
    average, which counts the benchmark itself)."""
    if env.get("other_work_cores") is not None:
        return f"{env['other_work_cores']:.2f} cores"
    return f"load average {env['load_average']}"


def machines_table(results) -> measure.Table:
    table = measure.Table(
        "Machines and software",
        [
            "results",
            "date",
            "backend",
            "device",
            "CPU",
            "cores",
            "other work",
            "jax / jaxlib",
            "flax",
            "XLA_FLAGS",
        ],
    )
    for script in SCRIPTS:
        for platform, payloads in results.get(script, {}).items():
            for payload in payloads:
                env = payload["environment"]
                device = env["device_kind"]
                if env.get("device_memory_gib"):
                    device += f" ({env['device_memory_gib']} GiB usable)"
                table.rows.append(
                    [
                        f"{script} ({platform})" + (" QUICK" if payload.get("quick") else ""),
                        env["date"],
                        env["backend"],
                        f"{device} x {env['local_devices']}",
                        env["cpu"],
                        str(env["cores"]),
                        other_work_cell(env),
                        f"{env['jax']} / {env['jaxlib']}",
                        env["flax"],
                        f"`{env['xla_flags']}`" if env["xla_flags"] else "",
                    ]
                )
    return table


def assemble(results_dir: pathlib.Path, output: pathlib.Path, commands: list[str]) -> None:
    results = load_results(results_dir)
    quick = any(p.get("quick") for s in results.values() for ps in s.values() for p in ps)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# lipjax benchmarks",
        "",
        f"Assembled {now} by `python benchmarks/run_all.py` from `{results_dir}`.",
    ]
    if quick:
        lines += [
            "",
            "**QUICK MODE: tiny models and few iterations, to check that the scripts run. "
            "These figures are not results.**",
        ]
    lines += ["", machines_table(results).markdown(), "", "### Commands", ""]
    script_commands = [p["command"] for s in results.values() for ps in s.values() for p in ps]
    lines += [f"    {command}" for command in [*commands, *script_commands]]
    lines += ["", "## Summary", "", targets_table(results).markdown()]
    for script in SCRIPTS:
        lines += ["", f"## {SECTIONS[script]}", ""]
        by_platform = results.get(script)
        if not by_platform:
            lines.append(f"not measured: run `python benchmarks/{script}.py`")
            continue
        lines.append("\n\n".join(table.markdown() for table in merged_tables(by_platform)))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------ main


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_bool("quick", False, "tiny sizes, to a temp dir")
    flags.DEFINE_list("only", [], f"comma-separated subset of {SCRIPTS} (default: all)")
    flags.DEFINE_string("results_dir", None, "default: benchmarks/results")
    flags.DEFINE_string("output", None, "default: benchmarks/RESULTS.md")
    flags.DEFINE_bool("assemble_only", False, "run no benchmark")
    flags.DEFINE_float("timeout", 4 * 3600, "seconds per script")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    only = FLAGS.only or list(SCRIPTS)
    for name in only:
        if name not in SCRIPTS:
            raise app.UsageError(
                f"--only: unknown script {name!r}; choose from {','.join(SCRIPTS)}"
            )
    scratch = pathlib.Path(tempfile.gettempdir()) / "lipjax_benchmarks_quick"
    default_results = scratch / "results" if FLAGS.quick else BENCHMARKS / "results"
    default_output = scratch / "RESULTS.md" if FLAGS.quick else BENCHMARKS / "RESULTS.md"
    results_dir = pathlib.Path(FLAGS.results_dir or default_results)
    output = pathlib.Path(FLAGS.output or default_output)
    commands = [" ".join(["python", "benchmarks/run_all.py", *sys.argv[1:]])]
    failures = []
    if not FLAGS.assemble_only:
        platform = probe_platform()
        results_dir.mkdir(parents=True, exist_ok=True)
        for name in only:
            print(f"== {name} ({platform})", flush=True)
            json_path = results_dir / f"{name}.{platform}.json"
            json_path.unlink(missing_ok=True)  # a failed run leaves no stale figures
            code, seconds, _ = run_script(name, json_path, FLAGS.quick, FLAGS.timeout)
            print(f"== {name}: exit {code} after {seconds:.0f} s", flush=True)
            if code != 0:
                failures.append(name)
    assemble(results_dir, output, commands)
    print(f"wrote {output}", flush=True)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)  # exits with main's return code
