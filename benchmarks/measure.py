"""Shared helpers of the benchmark scripts: the timing loops, XLA FLOP and memory figures,
device peaks, the machine's description, result tables (markdown on stdout, JSON for
run_all), worker processes and each script's `main`.

Not a benchmark itself; `benchmarks/*.py` import it (their directory is on sys.path when
run as `python benchmarks/NAME.py`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import flags

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# The environment as the user gave it, before `keep_off_accelerator_memory` changes it:
# worker processes start from this one.
ORIGINAL_ENV = dict(os.environ)
NO_GPU = "not measured: no GPU in this session"

# Dense peak TFLOP/s per device by compute dtype (vendor data sheets), matched against
# `device_kind` in this order (first match wins). The float32 figure is the TF32 tensor-core
# peak: float32 convolutions and matmuls at JAX's default precision may run as TF32 on
# these GPUs; where they do not, the non-tensor FP32 peak (67 TFLOP/s on an H100 SXM) is
# the ceiling and the float32 MFU reads low.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"bfloat16": 756.5, "float32": 378.0}),
    ("H100 NVL", {"bfloat16": 835.5, "float32": 417.5}),
    ("H100", {"bfloat16": 989.4, "float32": 494.7}),  # SXM
    ("H200", {"bfloat16": 989.4, "float32": 494.7}),
    ("A100", {"bfloat16": 312.0, "float32": 156.0}),
)


# ------------------------------------------------------------------------ environment


def ensure_repo_on_path() -> None:
    """Makes `lipjax` importable when a script runs from a checkout without `pip install`."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def keep_off_accelerator_memory() -> None:
    """For a parent process that only starts workers: JAX would otherwise reserve 75% of
    the GPU's memory as soon as it asks for the backend, leaving the workers short."""
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"


def cpu_model() -> str:
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown CPU"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def environment() -> dict[str, Any]:
    """The machine and software a figure was taken on (JSON-serialisable)."""
    import flax
    import jax
    import jaxlib

    devices = jax.local_devices()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "local_devices": len(devices),
        "processes": jax.process_count(),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "load_average": round(os.getloadavg()[0], 2),
        "other_work_cores": None if (other := other_work_cores()) is None else round(other, 2),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    stats = device_memory_stats()
    if stats and "bytes_limit" in stats:
        info["device_memory_gib"] = round(stats["bytes_limit"] / 2**30, 1)
    return info


def platform_name() -> str:
    """ "gpu" or "cpu" (or whatever JAX's default backend is): names result files."""
    import jax

    return jax.default_backend()


# ------------------------------------------------------------------------ XLA figures


def flops_from_cost_analysis(analysis: Any) -> float | None:
    """The "flops" entry of an XLA cost analysis: a dict in jax 0.4.30+ (0.10 included),
    a list with one dict per program in older releases."""
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    if not isinstance(analysis, dict):
        return None
    flops = analysis.get("flops")
    return float(flops) if flops is not None and flops > 0 else None


def step_flops(lowered, compiled) -> float | None:
    """FLOPs of one call per device. The lowered (unoptimised) HLO is counted first: its
    count does not depend on the backend's rewrites (fusions, cuDNN custom calls), so CPU
    and GPU report the same model FLOPs; the compiled count is the fallback."""
    for stage in (lowered, compiled):
        try:
            flops = flops_from_cost_analysis(stage.cost_analysis())
        except Exception:  # backends may not implement it (NotImplementedError and others)
            flops = None
        if flops:
            return flops
    return None


def compiled_memory_bytes(compiled) -> dict[str, int] | None:
    """XLA's static memory plan of a compiled program: arguments, outputs, temporaries,
    and `total` = arguments + outputs + temporaries - donated (aliased) buffers."""
    try:
        stats = compiled.memory_analysis()
    except Exception:
        return None
    if stats is None:
        return None
    figures = {
        name: int(getattr(stats, f"{name}_size_in_bytes", 0))
        for name in ("argument", "output", "temp", "alias", "generated_code")
    }
    figures["total"] = figures["argument"] + figures["output"] + figures["temp"] - figures["alias"]
    return figures


def device_memory_stats() -> dict[str, int] | None:
    import jax

    try:
        return jax.local_devices()[0].memory_stats()
    except Exception:
        return None


def device_peak_bytes() -> int | None:
    """Peak bytes in use on the first local device since the process started (GPU, TPU);
    None where the backend keeps no such count (CPU)."""
    stats = device_memory_stats()
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def peak_tflops(device_kind: str, dtype: str) -> float | None:
    for name, peaks in PEAK_TFLOPS:
        if name.lower() in device_kind.lower():
            return peaks.get(dtype)
    return None


def compile_timed(jitted, *args) -> tuple[Any, Any, float, float]:
    """(lowered, compiled, trace-and-lower seconds, compile seconds)."""
    start = time.perf_counter()
    lowered = jitted.lower(*args)
    traced = time.perf_counter()
    compiled = lowered.compile()
    return lowered, compiled, traced - start, time.perf_counter() - traced


# ------------------------------------------------------------------------ timing


def block(tree: Any) -> Any:
    import jax

    return jax.block_until_ready(tree)


def seconds_per_call(
    call: Callable[[], Any], *, warmup: int, iterations: int, repeats: int = 3
) -> float:
    """Median over `repeats` of (wall time of `iterations` back-to-back calls, blocked once
    at the end) / iterations: dispatch overlaps execution as in a real loop."""
    for _ in range(warmup):
        block(call())
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = None
        for _ in range(iterations):
            result = call()
        block(result)
        samples.append((time.perf_counter() - start) / iterations)
    return statistics.median(samples)


def compile_and_time(
    jitted, *args, warmup: int, iterations: int, repeats: int
) -> tuple[float, float, Any, Any]:
    """Compiles `jitted` for `args` (cold) and times the compiled call as `seconds_per_call`.
    Returns (seconds per call, trace + lower + compile seconds, lowered, compiled)."""
    lowered, compiled, trace_s, compile_s = compile_timed(jitted, *args)
    seconds = seconds_per_call(
        lambda: compiled(*args), warmup=warmup, iterations=iterations, repeats=repeats
    )
    return seconds, trace_s + compile_s, lowered, compiled


def seconds_per_step(
    step: Callable[[Any, Any], tuple[Any, Any]],
    state: Any,
    batches: Callable[[int], Any],
    *,
    warmup: int,
    iterations: int,
    repeats: int = 3,
) -> tuple[float, Any]:
    """Like `seconds_per_call` for a training step that threads (donated) state:
    `state, metrics = step(state, batches(i))`. Returns (seconds per step, final state)."""
    for index in range(warmup):
        state, metrics = step(state, batches(index))
        block(metrics)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(iterations):
            state, metrics = step(state, batches(index))
        block((state, metrics))
        samples.append((time.perf_counter() - start) / iterations)
    return statistics.median(samples), state


def timing_note(*, repeats: int, iterations: int, warmup: int, unit: str = "calls") -> str:
    """How `seconds_per_call` / `seconds_per_step` measured, for a table's notes."""
    return f"median of {repeats} runs of {iterations} {unit} after {warmup} warm-up {unit}"


# ------------------------------------------------------------------------ tables


@dataclasses.dataclass
class Table:
    """One result table: `rows` are lists of cells (strings) under `columns`; `figures`
    holds key numbers by name for run_all's summary of targets (JSON only)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + " --- |" * len(self.columns))
        for row in self.rows:
            cells = list(row) + [""] * (len(self.columns) - len(row))
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)


def emit(
    tables: Sequence[Table],
    json_path: str | None,
    *,
    script: str,
    arguments: Sequence[str],
    quick: bool,
) -> None:
    """Prints the tables as markdown; with `json_path`, also writes them with the
    environment and the command line, for `run_all.py` to assemble RESULTS.md."""
    print("\n\n".join(table.markdown() for table in tables), flush=True)
    if json_path:
        payload = {
            "script": script,
            "command": " ".join(["python", f"benchmarks/{script}", *arguments]),
            "quick": quick,
            "environment": environment(),
            "tables": [dataclasses.asdict(table) for table in tables],
        }
        path = pathlib.Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))


def add_load_warning(notes: list[str]) -> None:
    """Appends `load_warning()` to a table's notes when the machine was loaded."""
    warning = load_warning()
    if warning:
        notes.append(warning)


def set_defaults(args: Any, names: Sequence[str], defaults: Sequence[Any]) -> None:
    """Sets each argument of `names` left at None on the command line to its default."""
    for name, value in zip(names, defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)


def script_main(
    script: pathlib.Path,
    arguments_from_flags: Callable[[], Any],
    run: Callable[[Any], Sequence[Table]],
    *,
    worker: Callable[[Any], dict | None] | None = None,
) -> None:
    """A benchmark script's `main`, once `absl.app.run` has parsed the flags: read them
    (`arguments_from_flags`), run, print the tables and write `--json`.

    Scripts with a `worker` (rows measured in processes of their own, `run_worker`) run it
    when their `--worker` flag is set and report its result; their parent process keeps off
    the accelerator's memory (decided before `arguments_from_flags`, which may ask JAX for
    the backend to fill in defaults)."""
    ensure_repo_on_path()
    in_worker = worker is not None and flags.FLAGS.worker
    if worker is not None and not in_worker:
        keep_off_accelerator_memory()
    args = arguments_from_flags()
    if in_worker:
        result = worker(args)
        if result is not None:
            report_worker_result(result)
        return
    emit(run(args), args.json, script=script.name, arguments=sys.argv[1:], quick=args.quick)


def launch(
    script: pathlib.Path,
    define_flags: Callable[[], None],
    arguments_from_flags: Callable[[], Any],
    run: Callable[[Any], Sequence[Table]],
    *,
    worker: Callable[[Any], dict | None] | None = None,
) -> None:
    """A benchmark script's `if __name__ == "__main__"`: defines its flags, parses the
    command line with absl (a stray argument is a usage error) and runs `script_main`."""
    from absl import app

    define_flags()

    def main(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
        script_main(script, arguments_from_flags, run, worker=worker)

    app.run(main)


def run_worker(
    script: pathlib.Path,
    arguments: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[dict | None, str]:
    """Runs `python script --worker ...` in a fresh process (fresh device memory and
    peak counters; an out-of-memory error cannot take the caller down). Returns the JSON
    object the worker printed on its last `RESULT ` line (None if it failed) and its
    stderr tail."""
    full_env = dict(ORIGINAL_ENV if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH", "")) if p
    )
    try:
        done = subprocess.run(
            [sys.executable, str(script), "--worker", *arguments],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    result = None
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    if result is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        return None, "\n".join(tail)
    return result, ""


def report_worker_result(result: dict) -> None:
    """The worker's side of `run_worker`."""
    print("RESULT " + json.dumps(result), flush=True)


def is_out_of_memory(message: str) -> bool:
    return bool(re.search(r"RESOURCE_EXHAUSTED|[Oo]ut of memory|OOM", message))


# ------------------------------------------------------------------------ formatting


def gib(num_bytes: float | None) -> str:
    return "n/a" if num_bytes is None else f"{num_bytes / 2**30:.2f} GiB"


def milliseconds(seconds: float) -> str:
    value = 1e3 * seconds
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def rate(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def _proc_stat_fields(pid: str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1]), or None."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def other_cpu_seconds(root_pid: int | None = None) -> float | None:
    """CPU seconds used so far by every process outside `root_pid`'s tree (default: this
    process, its children and theirs): other work on the machine. None without /proc.

    Processes that ended between two readings drop out, so a difference of two readings
    can miss some work; it never counts our own.
    """
    root_pid = os.getpid() if root_pid is None else root_pid
    if not pathlib.Path("/proc/self/stat").exists():
        return None
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    parents, ticks = {}, {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _proc_stat_fields(entry.name)):
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime

    def ours(pid: int) -> bool:
        while pid > 1:
            if pid == root_pid:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(t for pid, t in ticks.items() if not ours(pid)) / ticks_per_second


# Taken when a script imports this module, before it measures anything.
_OTHER_WORK_AT_START = (time.monotonic(), other_cpu_seconds())


def other_work_cores(since: tuple[float, float | None] = _OTHER_WORK_AT_START) -> float | None:
    """Cores that processes other than this benchmark kept busy, on average, since `since`
    (default: since the script started); None where /proc is missing."""
    start, cpu_at_start = since
    cpu_now, elapsed = other_cpu_seconds(), time.monotonic() - start
    if cpu_at_start is None or cpu_now is None or elapsed <= 0:
        return None
    return max(0.0, cpu_now - cpu_at_start) / elapsed


def load_warning() -> str | None:
    """A note when other work shared the cores: timings are then pessimistic. Measured as
    the CPU time of processes outside this benchmark's process tree since it started (the
    load average would count the benchmark's own threads); the load average where /proc
    is missing."""
    cores = usable_cores()
    other = other_work_cores()
    if other is None:
        load = os.getloadavg()[0]
        if load > 0.5 * cores:
            return (
                f"Load average {load:.1f} on {cores} cores when measured (this benchmark "
                "included): other work may have shared the CPU, so CPU timings may be "
                "pessimistic."
            )
        return None
    if other > 0.1 * cores:
        return (
            f"Other processes kept {other:.2f} of the {cores} cores busy on average while "
            "this was measured, so CPU timings are pessimistic."
        )
    return None
