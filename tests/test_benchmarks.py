"""The benchmark scripts run and report the rows RESULTS.md expects (no timing asserted)."""

import importlib
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
NO_GPU = "not measured: no GPU in this session"


@pytest.fixture(scope="module")
def benchmarks():
    """Imports a benchmark module by name (they import each other as top-level modules)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCHMARKS))


def run_script(name: str, *arguments: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


SCRIPTS = ("train_step", "generate_speed", "upsampling", "peer", "scaling", "run_all")


def run_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with benchmarks/ on sys.path: absl's flags are global to
    a process, so what a test defines must not meet the flags of other tests."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r})\n{code}"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_importing_the_scripts_defines_no_flags():
    """Each script defines its absl flags only when run (scaling imports train_step, the
    tests import several): two definitions of --quick in one process would be an error."""
    done = run_python(
        "from absl import app, flags\n"
        "before = set(flags.FLAGS)\n"
        f"import {', '.join(SCRIPTS)}\n"
        "print(sorted(set(flags.FLAGS) - before))"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("remat", [False, True])
def test_train_step_worker_command_lines_parse_under_its_flags(remat):
    """The parent starts each row's worker with a command line of `--name=value` and
    boolean `--name` flags; the worker's absl flags read the row's settings back from it."""
    done = run_python(
        "import json, types, train_step\n"
        "train_step.define_flags()\n"
        "args = types.SimpleNamespace(steps=4, warmup=2, repeats=3, conv3d_impl='',\n"
        f"    upsample_impl='phases', remat={remat}, quick=True, compile_only=False)\n"
        "row = next(r for r in train_step.ROWS if r.name == 'grid_bf16_host')\n"
        "arguments = train_step.worker_arguments(row, 5, args)\n"
        "train_step.FLAGS(['train_step.py', '--worker', *arguments])\n"
        "print(json.dumps(train_step.FLAGS.flag_values_dict(), default=str))"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {
        "worker": True, "config": "grid", "dtype": "bfloat16", "batch": 5, "feed": "host",
        "steps": 4, "warmup": 2, "repeats": 3, "conv3d_impl": "", "upsample_impl": "phases",
        "remat": remat, "quick": True, "compile_only": False,
    }  # fmt: skip
    assert {name: parsed[name] for name in expected} == expected


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["train_step.py", "--rows=grid_bf16,nope"], "--rows: unknown 'nope'"),
        (["generate_speed.py", "--configs=nope"], "--configs: unknown 'nope'"),
        (["upsampling.py", "--variants=transposed/nope/native"], "--variants: unknown"),
        (["peer.py", "extra"], "Unexpected arguments: extra"),
        (["peer.py", "--batch=two"], "--batch"),
    ],
)
def test_bad_command_lines_are_usage_errors(arguments, message):
    """Caught before any JAX work: absl's usage error, exit status 1."""
    name, *rest = arguments
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *rest], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 1 and message in done.stderr, done.stderr[-3000:]


def test_quick_generate_speed_and_assembled_report(tmp_path):
    results = tmp_path / "results"
    run_script(
        "generate_speed.py",
        "--quick",
        "--configs=synthetic",
        f"--json={results / 'generate_speed.cpu.json'}",
    )
    # The largest-batch row is GPU-only: on CPU it is a placeholder, nothing compiles.
    run_script(
        "train_step.py",
        "--quick",
        "--rows=grid_bf16_max",
        f"--json={results / 'train_step.cpu.json'}",
    )
    report = tmp_path / "RESULTS.md"
    run_script("run_all.py", "--assemble_only", f"--results_dir={results}", f"--output={report}")

    generate = json.loads((results / "generate_speed.cpu.json").read_text())
    assert generate["quick"] and generate["environment"]["backend"] == "cpu"
    alone, latency, whole = generate["tables"]
    cpu_rows = [row for row in alone["rows"] if row[1] == "cpu"]
    assert [row[3] for row in cpu_rows] == ["1", "2"]  # clips per call
    assert all(float(row[5].strip("*").replace(",", "")) > 0 for row in cpu_rows)  # frames/s
    assert [row[1:3] for row in latency["rows"]] == [["cpu", "float32"], ["GPU", "float32"]]
    assert latency["rows"][1][3] == NO_GPU
    assert "50 frames" in whole["rows"][0][3]  # 2 s of audio in quick mode
    assert alone["figures"]["synthetic"]["best_frames_per_s"] > 0

    train = json.loads((results / "train_step.cpu.json").read_text())
    (table,) = train["tables"]
    assert [row[1] for row in table["rows"]] == ["cpu", "GPU"]
    assert table["rows"][0][4].startswith("not searched on CPU")
    assert table["rows"][1][4] == NO_GPU

    text = report.read_text()
    assert "QUICK MODE" in text
    for heading in ("## Summary", "## Training step", "## generate()", "## Up-sampling"):
        assert heading in text
    assert "not measured: run `python benchmarks/scaling.py`" in text
    assert text.count(NO_GPU) >= 4  # every target of the summary


def test_gpu_results_replace_placeholders(benchmarks):
    run_all = benchmarks("run_all")

    def payload(rows, figures):
        table = {"title": "t", "columns": ["row", "device"], "rows": rows, "notes": ["n"]}
        return {"tables": [dict(table, figures=figures)]}

    tables = run_all.merged_tables(
        {
            "cpu": [payload([["a", "cpu"], ["a", "GPU", NO_GPU]], {"a": 1})],
            "gpu": [payload([["a", "H100"]], {"a": 2})],
        }
    )
    (table,) = tables
    assert table.rows == [["a", "H100"], ["a", "cpu"]]
    assert table.figures == {"gpu:a": 2, "cpu:a": 1}
    assert table.notes == ["n"]


def test_flops_from_cost_analysis_of_either_shape(benchmarks):
    measure = benchmarks("measure")
    assert measure.flops_from_cost_analysis({"flops": 10.0}) == 10.0
    assert measure.flops_from_cost_analysis([{"flops": 7.0}]) == 7.0  # jax < 0.4.30
    assert measure.flops_from_cost_analysis({}) is None
    assert measure.flops_from_cost_analysis(None) is None


def test_cpu_rows_refused_for_memory_rerun_at_a_batch_that_fits(benchmarks):
    train_step = benchmarks("train_step")
    gib = 2**30
    refused = {"host_free_bytes": 16 * gib, "memory_plan": {"total": 17 * gib}}
    smaller = train_step.batch_that_fits_host(24, refused)
    assert 1 <= smaller < 24 and smaller * 17 / 24 <= 0.85 * 16
    assert train_step.batch_that_fits_host(24, {"memory_plan": {"total": gib}}) is None
    assert train_step.batch_that_fits_host(24, None) is None


@pytest.mark.skipif(not pathlib.Path("/proc/self/stat").exists(), reason="needs /proc")
def test_other_work_counts_cpu_outside_the_benchmarks_process_tree(benchmarks):
    """The load warning must not count the benchmark's own threads and workers (the load
    average did), and must count a busy process that is not one of them."""
    measure = benchmarks("measure")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def child_seconds() -> float:
        fields = measure._proc_stat_fields(str(busy.pid))
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        deadline = time.monotonic() + 10
        while child_seconds() < 1.0 and time.monotonic() < deadline:
            time.sleep(0.1)
        everyone = measure.other_cpu_seconds(root_pid=0)  # no process is "ours"
        without_us = measure.other_cpu_seconds()  # our tree, the busy child included
        without_child = measure.other_cpu_seconds(root_pid=busy.pid)
        used = child_seconds()
    finally:
        busy.kill()
        busy.wait()
    assert used >= 0.5
    assert everyone - without_us >= 0.9 * used  # the child is our own work
    assert 0.9 * used <= everyone - without_child <= used + 0.5

    # 3 CPU seconds of other work in 2 s of wall time: 1.5 cores, over 10% of any machine.
    since = (time.monotonic() - 2.0, measure.other_cpu_seconds() - 3.0)
    assert measure.other_work_cores(since) == pytest.approx(1.5, abs=0.3)
