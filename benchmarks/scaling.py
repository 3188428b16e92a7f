"""Data-parallel scaling of the training step over 1, 2, 4, 8 devices, and over two
processes joined by `jax.distributed` (the multi-host code path, on one machine).

    python benchmarks/scaling.py [--quick] [--json PATH]

Each device count runs in a process of its own, the step jitted as `lipjax.train` does: one
mesh with a `data` axis over all devices (`lipjax.sharding.make_mesh`), parameters and
optimiser state replicated, the batch split along `data` and made a global array from each
process's rows (`lipjax.data.pipeline.to_global_arrays`). Two series:
- strong scaling: the global batch fixed, split over more devices;
- weak scaling: the batch per device fixed, the global batch grows with the devices.

On CPU the devices are forced host devices (`--xla_force_host_platform_device_count=N`)
that share the machine's cores: N of them do the same arithmetic on the same cores, so this
measures the overhead of partitioning and collectives, not a speed-up. On GPUs every count
up to the local GPUs is a real device. The multi-process rows start 2 processes with 2
forced CPU devices each, joined through a coordinator on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import types

import measure
from absl import flags

SCRIPT = pathlib.Path(__file__).resolve()
COLUMNS = [
    "series",
    "processes x devices",
    "global batch",
    "per device",
    "step (ms)",
    "clips/s",
    "efficiency",
    "compile (s)",
]


# ------------------------------------------------------------------------ worker


def measure_worker(args) -> dict | None:
    if args.processes > 1:
        import jax

        # Explicit arguments: jax.distributed.initialize() reads only the coordinator's
        # address from the environment, not the process count or id.
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.processes,
            process_id=args.process_id,
        )
    import jax
    import train_step as train_step_benchmark

    from lipjax import sharding
    from lipjax.data import pipeline

    backend = jax.default_backend()
    config = train_step_benchmark.build_config(args.config, args.dtype, args.quick, backend)
    if args.quick:  # the pixel loss alone: a step that compiles in seconds
        config.loss.update(adversarial=0.0, correlation=0.0, perceptual=0.0)
    mesh = sharding.make_mesh(args.devices)
    sharding.check_batch_size(args.global_batch, mesh)
    step, state = train_step_benchmark.jitted_train_step(config, mesh, jax.random.key(0))
    local_rows = args.global_batch // jax.process_count()
    local = train_step_benchmark.random_batch(local_rows, seed=jax.process_index())
    batch = pipeline.to_global_arrays(local, sharding.data_sharding(mesh))
    _, compiled, trace_s, compile_s = measure.compile_timed(step, state, batch)
    seconds, _ = measure.seconds_per_step(
        compiled,
        state,
        lambda index: batch,
        warmup=args.warmup,
        iterations=args.steps,
        repeats=args.repeats,
    )
    if jax.process_index() != 0:
        return None
    return {
        "seconds": seconds,
        "compile_s": trace_s + compile_s,
        "devices": len(jax.devices()),
        "processes": jax.process_count(),
        "device_kind": jax.devices()[0].device_kind,
    }


# ------------------------------------------------------------------------ parent


def forced_cpu_env(devices: int) -> dict[str, str]:
    env = dict(measure.ORIGINAL_ENV)
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_processes(arguments: list[str], processes: int, devices_each: int, timeout: float):
    """Starts `processes` workers joined by a local coordinator; returns process 0's
    result (or None) and the error tail of the first that failed."""
    coordinator = f"127.0.0.1:{free_port()}"
    env = forced_cpu_env(devices_each)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(measure.REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    launched = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--worker",
                *arguments,
                f"--processes={processes}",
                f"--process_id={index}",
                f"--coordinator={coordinator}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for index in range(processes)
    ]
    outputs = []
    for process in launched:
        try:
            outputs.append(process.communicate(timeout=timeout))
        except subprocess.TimeoutExpired:
            process.kill()
            outputs.append(process.communicate())
    result = None
    for line in outputs[0][0].splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
    errors = [err for (_, err), p in zip(outputs, launched, strict=True) if p.returncode]
    return result, "\n".join(errors[0].strip().splitlines()[-5:]) if errors else ""


def series_plan(backend: str, local_devices: int, args) -> list[tuple[str, int, int]]:
    """(series, devices, global batch) for every worker to run."""
    if backend == "cpu":
        counts = [1, 2, 4, 8]
    else:
        counts = sorted({2**k for k in range(8) if 2**k <= local_devices} | {local_devices})
    plan = []
    for devices in counts:
        if args.strong_batch % devices == 0:
            plan.append(("strong", devices, args.strong_batch))
    plan.extend(("weak", devices, args.weak_batch * devices) for devices in counts)
    return plan


def efficiency(series: str, devices: int, seconds: float, base: float, shared: bool) -> str:
    """ideal time / measured time. Ideal: strong on real devices t1 / N, weak t1; on
    forced CPU devices sharing the cores, strong t1 and weak N t1 (the same arithmetic)."""
    if shared:
        ideal = base if series == "strong" else devices * base
    else:
        ideal = base / devices if series == "strong" else base
    return f"{ideal / seconds:.2f}"


def run(args) -> list[measure.Table]:
    import jax

    backend = jax.default_backend()
    local_devices = jax.local_device_count()
    table = measure.Table(
        "Data-parallel scaling of the training step"
        + (" (quick sizes, pixel loss only)" if args.quick else ""),
        COLUMNS,
    )
    common = [
        f"--config={args.config}",
        f"--dtype={args.dtype}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--repeats={args.repeats}",
        *(["--quick"] if args.quick else []),
    ]
    shared = backend == "cpu"
    base: dict[str, float] = {}
    device_kind = ""
    plan = series_plan(backend, local_devices, args)
    if not shared and local_devices == 1:
        plan = []  # one device: the training-step benchmark already has its figures
        table.rows.append(
            [
                "strong and weak",
                f"1 x 1 {backend.upper()}",
                "",
                "",
                "one local device: nothing to scale (see the training step)",
            ]
        )
    for series, devices, global_batch in plan:
        arguments = [*common, f"--devices={devices}", f"--global_batch={global_batch}"]
        env = forced_cpu_env(devices) if shared else dict(measure.ORIGINAL_ENV)
        result, error = measure.run_worker(SCRIPT, arguments, env=env, timeout=args.timeout)
        label = f"1 x {devices}"
        if result is None:
            last = error.splitlines()[-1] if error else "no output"
            table.rows.append([series, label, str(global_batch), "", f"failed: {last}"])
            continue
        device_kind = result["device_kind"]
        seconds = result["seconds"]
        base.setdefault(series, seconds)
        table.rows.append(
            [
                series,
                label,
                str(global_batch),
                str(global_batch // devices),
                measure.milliseconds(seconds),
                measure.rate(global_batch / seconds),
                efficiency(series, devices, seconds, base[series], shared),
                f"{result['compile_s']:.1f}",
            ]
        )
        print(" | ".join(table.rows[-1]), file=sys.stderr, flush=True)
    if shared and args.processes_rows:
        for series, global_batch in (
            ("strong", args.strong_batch),
            ("weak", args.weak_batch * 4),
        ):
            arguments = [*common, "--devices=4", f"--global_batch={global_batch}"]
            result, error = run_processes(arguments, 2, 2, args.timeout)
            if result is None:
                table.rows.append(
                    [
                        f"{series}, jax.distributed",
                        "2 x 2",
                        str(global_batch),
                        "",
                        f"failed: {error.splitlines()[-1] if error else 'no output'}",
                    ]
                )
                continue
            seconds = result["seconds"]
            table.rows.append(
                [
                    f"{series}, jax.distributed",
                    "2 x 2",
                    str(global_batch),
                    str(global_batch // 4),
                    measure.milliseconds(seconds),
                    measure.rate(global_batch / seconds),
                    efficiency(series, 4, seconds, base.get(series, seconds), shared)
                    if series in base
                    else "n/a",
                    f"{result['compile_s']:.1f}",
                ]
            )
            print(" | ".join(table.rows[-1]), file=sys.stderr, flush=True)
    if backend != "gpu":
        table.rows.append(["strong and weak", "GPUs", "", "", measure.NO_GPU])
    timing = measure.timing_note(
        repeats=args.repeats, iterations=args.steps, warmup=args.warmup, unit="steps"
    )
    table.notes.extend(
        [
            f"Devices: {device_kind or backend}; config {args.config}, {args.dtype}. Step "
            f"timing: {timing}, the batch resident on the devices.",
            "Efficiency = ideal time / measured time (1.00 is perfect). "
            + (
                f"Forced CPU devices share the machine's {measure.usable_cores()} cores, so "
                "the ideal is no faster than 1 device: strong = the 1-device time, weak = N "
                "times it; below 1.00 is the cost of partitioning and collectives."
                if shared
                else "Ideal: strong = the 1-device time / N, weak = the 1-device time."
            ),
        ]
    )
    if shared and args.processes_rows:
        table.notes.append(
            "jax.distributed rows: 2 processes on this machine with 2 forced CPU devices "
            "each (4 in the mesh), coordinator on 127.0.0.1, CPU collectives through gloo; "
            "efficiency against the 1-process 1-device time, as for 4 devices."
        )
    measure.add_load_warning(table.notes)
    return [table]


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_bool("quick", False, "tiny model, pixel loss only")
    flags.DEFINE_string("config", None, "grid or synthetic (default by backend)")
    flags.DEFINE_string("dtype", None, "float32 or bfloat16 (default by backend)")
    flags.DEFINE_integer("strong_batch", None, "global batch")
    flags.DEFINE_integer("weak_batch", None, "batch per device")
    flags.DEFINE_integer("steps", None, "timed steps per repeat")
    flags.DEFINE_integer("warmup", None, "untimed steps first")
    flags.DEFINE_integer("repeats", None, "repeats (the median counts)")
    flags.DEFINE_float("timeout", 3600.0, "seconds per worker")
    flags.DEFINE_bool("no_processes_rows", False, "skip the 2-process jax.distributed rows (CPU)")
    flags.DEFINE_string("json", None, "also write the tables here (run_all)")
    # The worker's flags: `run` sets them on the command lines of the processes it starts.
    flags.DEFINE_bool("worker", False, "internal: measure one row")
    flags.DEFINE_integer("devices", 1, "internal: the worker's devices")
    flags.DEFINE_integer("global_batch", 8, "internal: the worker's global batch")
    flags.DEFINE_integer("processes", 1, "internal: processes of the worker's job")
    flags.DEFINE_integer("process_id", 0, "internal: the worker's process id")
    flags.DEFINE_string("coordinator", "", "internal: the worker's coordinator host:port")


def arguments_from_flags() -> types.SimpleNamespace:
    """The parsed flags as the attributes `run` and `measure_worker` read, the settings left
    unset filled in for the backend."""
    args = types.SimpleNamespace(**FLAGS.flag_values_dict())
    args.processes_rows = not args.no_processes_rows
    if args.worker:
        return args
    import jax

    on_gpu = jax.default_backend() == "gpu"
    # (config, dtype, strong global batch, weak per-device batch, steps, warmup, repeats)
    if args.quick:
        defaults = ("synthetic", "float32", 8, 1, 2, 1, 1)
    elif on_gpu:
        defaults = ("grid", "bfloat16", 24, 24, 20, 3, 3)
    else:
        defaults = ("synthetic", "float32", 8, 2, 2, 1, 2)
    names = ("config", "dtype", "strong_batch", "weak_batch", "steps", "warmup", "repeats")
    measure.set_defaults(args, names, defaults)
    return args


if __name__ == "__main__":
    measure.launch(SCRIPT, define_flags, arguments_from_flags, run, worker=measure_worker)
