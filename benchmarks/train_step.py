"""Training-step speed: clips/s, step time, compile time, memory and model FLOP utilisation.

    python benchmarks/train_step.py [--quick] [--rows=grid_fp32,grid_bf16,...] [--json=PATH]

Each row runs in its own process (fresh device memory and peak counter; an out-of-memory
error fails that row only). A row builds the networks of its config (`experiments/grid.py`
at the paper's sizes, or the CPU default `experiments/synthetic.py`), random parameters
(FlowNet and the frozen perceptual encoder too), and jits `lipjax.train.train_step.train_step` as
`lipjax.train` does: one-device mesh, replicated state, batch split over `data`, the state
donated. The batch is random and stays on the device unless the row feeds it from host
memory every step. Timing: steps dispatched back to back and blocked once at the end (no
host sync inside the loop), median of repeats, after warm-up.

FLOPs per step come from XLA's cost analysis of the lowered step (the same count on every
backend); MFU = FLOPs / step time / the device's dense peak for the compute dtype (bf16;
for float32 the TF32 tensor-core peak, see measure.PEAK_TFLOPS). On CPU the achieved
GFLOP/s is given instead. Peak memory is the device's `peak_bytes_in_use` on GPUs; on CPU,
XLA's static plan of the compiled step (arguments + outputs + temporaries - donated
buffers) stands in for it.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import sys
import types

import measure
from absl import app, flags

SCRIPT = pathlib.Path(__file__).resolve()


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    label: str
    config: str  # "grid" (paper sizes) or "synthetic" (CPU default)
    dtype: str
    batch: int | str  # a batch size, or "max": the largest batch that fits (GPU only)
    feed: str = "device"  # "device": the same resident batch; "host": NumPy every step


ROWS = (
    Row("grid_fp32", "grid.py, paper sizes", "grid", "float32", 24),
    Row("grid_bf16", "grid.py, paper sizes", "grid", "bfloat16", 24),
    Row(
        "grid_bf16_host",
        "grid.py, batch copied from host each step",
        "grid",
        "bfloat16",
        24,
        "host",
    ),
    Row("grid_bf16_max", "grid.py, largest batch that fits", "grid", "bfloat16", "max"),
    Row("synthetic", "synthetic.py (CPU default config)", "synthetic", "float32", 8),
)
QUICK_BATCH = 2
HOST_MEMORY_SHARE = 0.85  # of the free host memory a CPU row may plan to use
# --quick validates every code path (bf16, fp32, host feed, the max-batch search's
# placeholder) in three rows: each row compiles a whole training step.
QUICK_ROWS = ("grid_bf16_host", "grid_bf16_max", "synthetic")
COLUMNS = [
    "row",
    "device",
    "dtype",
    "batch",
    "clips/s",
    "step (ms)",
    "compile (s)",
    "device peak memory",
    "XLA memory plan",
    "GFLOP/step",
    "achieved TFLOP/s",
    "MFU",
]


# ------------------------------------------------------------------------ one row (worker)


def build_config(
    name: str,
    dtype: str,
    quick: bool,
    backend: str,
    conv3d_impl: str = "",
    upsample_impl: str = "",
    remat: bool = False,
):
    """The experiment's config with the row's compute dtype; the implementations of the
    3D and up-sampling convolutions and `model.remat` as given ("" keeps the config's,
    "auto": the backend's fastest exact ones)."""
    from lipjax import configs

    if name == "grid":
        config = configs.dataset_config("grid")
    elif name == "synthetic":
        config = configs.cpu_sized(configs.base_config())
    else:
        raise ValueError(f"config: expected 'grid' or 'synthetic', got {name!r}")
    if quick:
        configs.smoke(config)
    config.model.compute_dtype = dtype
    del backend  # "auto" resolves the backend's implementations when the step is traced
    if conv3d_impl:
        config.model.conv3d_impl = conv3d_impl
    if upsample_impl:
        config.model.upsample_impl = upsample_impl
    config.model.remat = remat
    return config


def random_batch(batch_size: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "audio": rng.standard_normal((batch_size, 64, 128, 1), np.float32),
        "identity": rng.uniform(-1, 1, (batch_size, 64, 64, 3)).astype(np.float32),
        "video": rng.uniform(-1, 1, (batch_size, 16, 64, 64, 3)).astype(np.float32),
    }


def jitted_train_step(config, mesh, key):
    """The training step jitted as `lipjax.train` does it over `mesh` (replicated state,
    batch split over `data`, the state donated), and a random initial state replicated there
    (FlowNet and the frozen perceptual encoder random too: they time the same).
    Returns (step, state)."""
    import jax
    import jax.numpy as jnp

    from lipjax import sharding
    from lipjax.train import train_step as lipjax_step

    networks = lipjax_step.build_networks(config)
    perceptual = None
    if networks.perceptual is not None:
        perceptual = networks.perceptual.init(key, jnp.zeros((2, 64, 64, 3)), train=False)
    state = lipjax_step.init_state(networks, config, key, perceptual_variables=perceptual)
    data, replicated = sharding.data_sharding(mesh), sharding.replicated(mesh)
    step = jax.jit(
        functools.partial(
            lipjax_step.train_step,
            networks=networks,
            optimizers=lipjax_step.make_optimizers(config),
            loss_config=config.loss,
        ),
        in_shardings=(replicated, data),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    return step, jax.device_put(state, replicated)


def available_host_bytes() -> int | None:
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def measure_row(args: types.SimpleNamespace) -> dict:
    import jax

    from lipjax import sharding
    from lipjax.models.layers import resolve_impl

    backend = jax.default_backend()
    config = build_config(
        args.config,
        args.dtype,
        args.quick,
        backend,
        args.conv3d_impl,
        args.upsample_impl,
        args.remat,
    )
    mesh = sharding.make_mesh(1)
    step, state = jitted_train_step(config, mesh, jax.random.key(0))
    data = sharding.data_sharding(mesh)
    host_batches = [random_batch(args.batch, seed) for seed in range(2)]
    resident = jax.device_put(host_batches[0], data)
    lowered, compiled, trace_s, compile_s = measure.compile_timed(step, state, resident)
    plan = measure.compiled_memory_bytes(compiled)
    result = {
        "backend": backend,
        "device_kind": jax.devices()[0].device_kind,
        "conv3d_impl": resolve_impl("conv3d_impl", config.model.conv3d_impl),
        "upsample_impl": resolve_impl("upsample_impl", config.model.upsample_impl),
        "remat": config.model.remat,
        "upsample": config.model.upsample,
        "trace_s": trace_s,
        "compile_s": compile_s,
        "flops": measure.step_flops(lowered, compiled),
        "memory_plan": plan,
    }
    if args.compile_only:
        result["skipped"] = "compiled only (--compile_only)"
        return result
    host = available_host_bytes()
    if backend == "cpu" and plan and host and plan["total"] > HOST_MEMORY_SHARE * host:
        result["skipped"] = (
            f"needs {measure.gib(plan['total'])}, {measure.gib(host)} of host memory free"
        )
        result["host_free_bytes"] = host
        return result

    if args.feed == "host":

        def batches(index):
            return jax.device_put(host_batches[index % 2], data)
    else:

        def batches(index):
            return resident

    seconds, state = measure.seconds_per_step(
        compiled,
        state,
        batches,
        warmup=args.warmup,
        iterations=args.steps,
        repeats=args.repeats,
    )
    stats = measure.device_memory_stats() or {}
    result.update(
        seconds=seconds,
        peak_bytes=measure.device_peak_bytes(),
        bytes_limit=stats.get("bytes_limit"),
    )
    return result


# ------------------------------------------------------------------------ rows (parent)


def worker_arguments(row: Row, batch: int, args: types.SimpleNamespace) -> list[str]:
    arguments = [
        f"--config={row.config}",
        f"--dtype={row.dtype}",
        f"--batch={batch}",
        f"--feed={row.feed}",
        f"--steps={args.steps}",
        f"--warmup={args.warmup}",
        f"--repeats={args.repeats}",
    ]
    arguments += [f"--conv3d_impl={args.conv3d_impl}", f"--upsample_impl={args.upsample_impl}"]
    arguments += ["--remat"] if args.remat else []
    arguments += ["--quick"] if args.quick else []
    return arguments + (["--compile_only"] if args.compile_only else [])


def worker_env() -> dict[str, str]:
    env = dict(measure.ORIGINAL_ENV)
    # One allocator pool of 95% of the GPU (JAX's default is 75%), so that the largest
    # batch search sees nearly the whole device; ignored on CPU.
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.95")
    return env


def format_row(row: Row, batch: int, result: dict) -> list[str]:
    device = result["device_kind"]
    label = row.label + (" (quick sizes)" if result.get("quick") else "")
    label += (
        f"; {result['upsample']} ({result.get('upsample_impl', 'native')}), "
        f"conv3d {result['conv3d_impl']}" + (", remat" if result.get("remat") else "")
    )
    compile_s = f"{result['trace_s'] + result['compile_s']:.1f}"
    plan = result.get("memory_plan")
    plan_cell = measure.gib(plan["total"]) if plan else "n/a"
    flops = result.get("flops")
    flops_cell = f"{flops / 1e9:,.0f}" if flops else "n/a"
    if "skipped" in result:
        skipped = f"not run: {result['skipped']}"
        return [
            label,
            device,
            row.dtype,
            str(batch),
            skipped,
            "",
            compile_s,
            "",
            plan_cell,
            flops_cell,
        ]
    seconds = result["seconds"]
    achieved = flops / seconds / 1e12 if flops else None
    peak = measure.peak_tflops(device, row.dtype) if result["backend"] == "gpu" else None
    if achieved is None:
        mfu = "n/a"
    elif peak:
        mfu = f"{100 * achieved / peak:.1f}% of {peak:g}"
    else:
        mfu = f"n/a ({result['backend']}: {1e3 * achieved:.0f} GFLOP/s)"
    return [
        label,
        device,
        row.dtype,
        str(batch),
        f"**{measure.rate(batch / seconds)}**",
        measure.milliseconds(seconds),
        compile_s,
        measure.gib(result.get("peak_bytes")),
        plan_cell,
        flops_cell,
        f"{achieved:.3g}" if achieved else "n/a",
        mfu,
    ]


def key_figures(row: Row, batch: int, result: dict) -> dict:
    figures = {"backend": result["backend"], "dtype": row.dtype, "batch": batch}
    if "seconds" in result:
        seconds, flops = result["seconds"], result.get("flops")
        peak = measure.peak_tflops(result["device_kind"], row.dtype)
        figures.update(
            clips_per_s=batch / seconds,
            step_s=seconds,
            peak_bytes=result.get("peak_bytes"),
            mfu=flops / seconds / 1e12 / peak if flops and peak else None,
        )
    return figures


def batch_that_fits_host(batch: int, result: dict | None) -> int | None:
    """A smaller batch for a CPU row refused for host memory (memory grows about
    linearly with the batch), or None when the row was not refused."""
    if not result or "host_free_bytes" not in result:
        return None
    share = HOST_MEMORY_SHARE * result["host_free_bytes"] / result["memory_plan"]["total"]
    smaller = int(batch * share * 0.9)
    return smaller if 1 <= smaller < batch else None


def round_down(value: float, multiple: int = 8) -> int:
    return max(multiple, int(value) // multiple * multiple)


def search_max_batch(row: Row, reference: dict, args: types.SimpleNamespace):
    """Largest batch that runs: a first guess from the batch-24 peak (memory grows about
    linearly with the batch), then 0.8x steps down after each out-of-memory failure.
    Returns (batch, result or None, message)."""
    peak, limit = reference.get("peak_bytes"), reference.get("bytes_limit")
    if not peak or not limit:
        return None, None, "no device memory statistics on this backend"
    batch = round_down(24 * 0.92 * limit / peak)
    tried = []
    for _ in range(args.max_batch_attempts):
        result, error = measure.run_worker(
            SCRIPT, worker_arguments(row, batch, args), env=worker_env()
        )
        if result is not None:
            return batch, result, f"tried {[*tried, batch]}" if tried else ""
        tried.append(batch)
        if not measure.is_out_of_memory(error):
            return batch, None, f"failed: {error.splitlines()[-1] if error else '?'}"
        batch = round_down(batch * 0.8)
    return None, None, f"out of memory at every batch tried: {tried}"


def run(args: types.SimpleNamespace) -> list[measure.Table]:
    import jax

    backend = jax.default_backend()
    if args.rows:
        names = args.rows.split(",")
    else:
        names = list(QUICK_ROWS) if args.quick else [row.name for row in ROWS]
    rows = [row for row in ROWS if row.name in names]
    table = measure.Table("Training step (one device)", COLUMNS)
    results: dict[str, dict] = {}
    for row in rows:
        if row.batch == "max":
            if backend != "gpu":
                table.rows.append(
                    [
                        row.label,
                        jax.devices()[0].device_kind,
                        row.dtype,
                        "",
                        "not searched on CPU (host memory, not a device's, is the limit)",
                    ]
                )
                continue
            reference = results.get("grid_bf16")
            if reference is None or "seconds" not in reference:
                table.rows.append([row.label, "", row.dtype, "", "needs the grid_bf16 row"])
                continue
            batch, result, message = search_max_batch(row, reference, args)
            if result is None:
                table.rows.append([row.label, "", row.dtype, str(batch or ""), message])
                continue
            if message:
                table.notes.append(f"Largest batch search: {message}.")
        else:
            batch = QUICK_BATCH if args.quick else (args.batch or row.batch)
            result, error = measure.run_worker(
                SCRIPT, worker_arguments(row, batch, args), env=worker_env()
            )
            smaller = batch_that_fits_host(batch, result)
            if smaller:
                table.notes.append(
                    f"{row.label}, {row.dtype} on CPU: batch {batch} would plan "
                    f"{measure.gib(result['memory_plan']['total'])}, more than the free host "
                    f"memory; measured at batch {smaller}."
                )
                batch = smaller
                result, error = measure.run_worker(
                    SCRIPT, worker_arguments(row, batch, args), env=worker_env()
                )
            if result is None:
                last = error.splitlines()[-1] if error else "no output"
                table.rows.append([row.label, "", row.dtype, str(batch), f"failed: {last}"])
                continue
        result["quick"] = args.quick
        results[row.name] = result
        table.rows.append(format_row(row, batch, result))
        table.figures[row.name] = key_figures(row, batch, result)
        print(" | ".join(table.rows[-1]), file=sys.stderr, flush=True)
    if backend != "gpu":
        for row in rows:
            batch = "max" if row.batch == "max" else str(row.batch)
            table.rows.append([row.label, "GPU", row.dtype, batch, measure.NO_GPU])
    table.notes.extend(notes(results, args))
    return [table]


def notes(results: dict[str, dict], args: types.SimpleNamespace) -> list[str]:
    timing = measure.timing_note(
        repeats=args.repeats, iterations=args.steps, warmup=args.warmup, unit="steps"
    )
    lines = [
        f"Timing: {timing}; one step = one discriminator update plus one generator, "
        "correlation and FlowNet update (SPEC). Random parameters and data.",
        "Compile = trace and lower + XLA compile of the whole step, cold (no cache).",
        "FLOPs: XLA's cost analysis of the lowered step (the transposed convolutions count "
        "the zeros of their stride-dilated input, so the transposed rows overstate useful "
        "FLOPs a little).",
    ]
    reference = results.get("grid_bf16", {})
    if reference.get("peak_bytes"):
        fits = "fits" if reference["peak_bytes"] <= 16 * 2**30 else "does NOT fit"
        lines.append(
            f"Batch 24 in bfloat16 {fits} in 16 GiB (device peak "
            f"{measure.gib(reference['peak_bytes'])})."
        )
    if any(r.get("backend") == "cpu" for r in results.values()):
        lines.append(
            "Device peak memory is not tracked on CPU; the XLA memory plan (arguments + "
            "outputs + temporaries - donated buffers) stands in for it. Each row's label "
            "names the up-sampling (its implementation) and the 3D-convolution "
            "implementation it ran with (all exact: the same function and parameters)."
        )
    measure.add_load_warning(lines)
    return lines


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    row_names = ",".join(row.name for row in ROWS)
    flags.DEFINE_bool("quick", False, f"tiny models, batch 2, rows {','.join(QUICK_ROWS)}")
    flags.DEFINE_string("rows", "", f"comma-separated subset of {row_names}")
    flags.DEFINE_integer("steps", None, "timed steps per repeat")
    flags.DEFINE_integer("warmup", None, "untimed steps first")
    flags.DEFINE_integer("repeats", None, "repeats (the median counts)")
    flags.DEFINE_integer(
        "batch", None, "batch of every fixed-batch row (default: the row's own, 24 or 8)"
    )
    flags.DEFINE_integer("max_batch_attempts", 3, "workers the largest batch search may start")
    flags.DEFINE_bool(
        "compile_only",
        False,
        "compile each row and report FLOPs and XLA's memory plan, run nothing",
    )
    flags.DEFINE_string("conv3d_impl", "", "model.conv3d_impl of every row (default: config's)")
    flags.DEFINE_string("upsample_impl", "", "model.upsample_impl of every row (default: config's)")
    flags.DEFINE_bool("remat", False, "model.remat (residual blocks)")
    flags.DEFINE_string("json", None, "also write the tables here (run_all)")
    # The worker's flags (one row, in a process of its own): `worker_arguments` sets them
    # on the command lines of the processes `run` starts.
    flags.DEFINE_bool("worker", False, "internal: measure one row")
    flags.DEFINE_string("config", "grid", "internal: the worker's config")
    flags.DEFINE_string("dtype", "float32", "internal: the worker's compute dtype")
    flags.DEFINE_string("feed", "device", "internal: the worker's batch feed, device or host")


def arguments_from_flags() -> types.SimpleNamespace:
    """The parsed flags as the attributes `run` and `measure_row` read, the settings left
    unset filled in for the backend."""
    args = types.SimpleNamespace(**FLAGS.flag_values_dict())
    for name in filter(None, args.rows.split(",")):
        if name not in {row.name for row in ROWS}:
            raise app.UsageError(
                f"--rows: unknown {name!r}; choose from {','.join(r.name for r in ROWS)}"
            )
    import jax

    on_cpu = jax.default_backend() == "cpu"
    # CPU: a paper-size step takes minutes there (73 s at batch 2 on 2 loaded cores).
    defaults = (2, 1, 1) if args.quick else ((1, 1, 2) if on_cpu else (20, 3, 3))
    measure.set_defaults(args, ("steps", "warmup", "repeats"), defaults)
    return args


if __name__ == "__main__":
    measure.launch(SCRIPT, define_flags, arguments_from_flags, run, worker=measure_row)
