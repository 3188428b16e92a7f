"""Generation speed: the generator alone on batches of 16-frame clips, and whole
`generate()` calls on a 10 s utterance.

    python benchmarks/generate_speed.py [--quick] [--configs=grid_fp32,grid_bf16,synthetic]
                                        [--batches=1,16,64,256] [--json=PATH]

Random generator weights of each config (`experiments/grid.py` at the paper's sizes, or the
CPU default `experiments/synthetic.py`) in a `lipjax.inference.weights.Weights`, whose `generator()`
picks the 3D-convolution implementation of the backend (taps on CPU, native elsewhere).

(a) The model alone: the jitted generator call of `lipjax.inference.generate` (eval mode,
the weights
passed as arguments) on B clips of audio windows and an identity image already on the
device; frames/s = 16 B / time per call (calls dispatched back to back, blocked at the end);
the latency of one clip is the median of single calls at B = 1, each blocked before the next.
(b) `LipGenerator(weights)(waveform, crop, sample_rate=44100)` on 10 s of noise and a 64x64
crop: the log-mel in JAX, windows of 16 frames with hop 8 (31 windows, in calls of 16, the
last padded to a power of two), blending on the host, uint8 frames back in host memory.
The paper: 0.015 s per frame on a GTX 1080 Ti.
"""

from __future__ import annotations

import pathlib
import sys
import time
import types

import measure
from absl import app, flags

SCRIPT = pathlib.Path(__file__).resolve()
CONFIGS = {
    # name: (config, compute dtype, label)
    "grid_fp32": ("grid", "float32", "grid.py, paper sizes"),
    "grid_bf16": ("grid", "bfloat16", "grid.py, paper sizes"),
    "synthetic": ("synthetic", "float32", "synthetic.py (CPU default config)"),
}
UTTERANCE_SECONDS = 10.0
PAPER_SECONDS_PER_FRAME = 0.015


def random_weights(config_name: str, dtype: str, quick: bool):
    """`Weights` holding random (He-initialised) generator variables of the config."""
    import jax
    import jax.numpy as jnp

    from lipjax import configs
    from lipjax.inference.weights import Weights
    from lipjax.train import train_step as lipjax_step

    config = (
        configs.dataset_config("grid")
        if config_name == "grid"
        else configs.cpu_sized(configs.base_config())
    )
    if quick:
        configs.smoke(config)
    config.model.compute_dtype = dtype
    generator = lipjax_step.build_networks(config).generator
    variables = generator.init(
        jax.random.key(0), jnp.zeros((1, 64, 128, 1)), jnp.zeros((1, 64, 64, 3)), train=False
    )
    model = config.model.to_dict()
    return Weights(model, variables["params"], variables.get("batch_stats", {}), "random")


def model_alone(weights, batches, args) -> tuple[list[dict], float]:
    """Per batch size: seconds per call, compile seconds, FLOPs; and one clip's latency."""
    import functools

    import jax
    import numpy as np

    from lipjax.inference.generate import _run_generator

    run = jax.jit(functools.partial(_run_generator, weights.generator()))
    variables = jax.device_put(weights.variables)
    rng = np.random.default_rng(0)
    results = []
    latency = None
    for batch in batches:
        audio = jax.device_put(rng.standard_normal((batch, 64, 128, 1), np.float32))
        identity = jax.device_put(rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32))
        try:
            seconds, compile_s, lowered, compiled = measure.compile_and_time(
                run,
                variables,
                audio,
                identity,
                warmup=args.warmup,
                iterations=args.iterations,
                repeats=args.repeats,
            )
        except jax.errors.JaxRuntimeError as error:
            if not measure.is_out_of_memory(str(error)):
                raise
            results.append({"batch": batch, "out_of_memory": True})
            break  # larger batches need more
        if batch == 1:
            latency = measure.seconds_per_call(
                lambda c=compiled, a=audio, i=identity: c(variables, a, i),
                warmup=0,
                iterations=1,
                repeats=args.latency_repeats,
            )
        results.append(
            {
                "batch": batch,
                "seconds": seconds,
                "compile_s": compile_s,
                "flops": measure.step_flops(lowered, compiled),
            }
        )
    return results, latency


def whole_generate(weights, args) -> dict:
    """Seconds per `generate()` call on a 10 s utterance, and for its log-mel windows."""
    import numpy as np

    from lipjax.data.audio import SAMPLE_RATE
    from lipjax.inference.generate import LipGenerator

    rng = np.random.default_rng(0)
    seconds_of_audio = 2.0 if args.quick else UTTERANCE_SECONDS
    waveform = (0.1 * rng.standard_normal(int(seconds_of_audio * SAMPLE_RATE))).astype(np.float32)
    crop = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    generator = LipGenerator(weights)
    start = time.perf_counter()
    frames = generator(waveform, crop, sample_rate=SAMPLE_RATE)  # compiles
    first = time.perf_counter() - start
    # Single calls, each finished before the next: what one user request waits.
    single = {"warmup": 0, "iterations": 1, "repeats": args.repeats}
    seconds = measure.seconds_per_call(
        lambda: generator(waveform, crop, sample_rate=SAMPLE_RATE), **single
    )
    mel_seconds = measure.seconds_per_call(lambda: generator.windows(waveform)[2], **single)
    return {
        "audio_seconds": seconds_of_audio,
        "frames": len(frames),
        "windows": len(generator.windows(waveform)[1]),
        "seconds": seconds,
        "mel_seconds": mel_seconds,
        "first_call_s": first,
    }


def run(args) -> list[measure.Table]:
    import jax

    backend = jax.default_backend()
    device = jax.devices()[0].device_kind
    names = args.configs.split(",")
    alone = measure.Table(
        "generate(): the generator alone, batches of 16-frame clips",
        [
            "config",
            "device",
            "dtype",
            "clips per call",
            "ms per call",
            "frames/s",
            "compile (s)",
            "GFLOP/clip",
            "MFU",
        ],
    )
    whole = measure.Table(
        "generate(): whole call on one utterance",
        [
            "config",
            "device",
            "dtype",
            "utterance",
            "s per call",
            "frames/s",
            "ms per frame",
            "of which log-mel (ms)",
            "first call, compiling (s)",
        ],
    )
    latency_table = measure.Table(
        "generate(): latency of one 16-frame clip (generator alone, batch 1)",
        ["config", "device", "dtype", "latency (ms)"],
    )
    quick_mark = " (quick sizes)" if args.quick else ""
    for name in names:
        config_name, dtype, label = CONFIGS[name]
        label += quick_mark
        weights = random_weights(config_name, dtype, args.quick)
        batches = [int(b) for b in args.batches.split(",")] if args.batches else None
        if batches is None:
            batches = default_batches(backend, config_name, args.quick)
        results, latency = model_alone(weights, batches, args)
        for result in results:
            if result.get("out_of_memory"):
                alone.rows.append([label, device, dtype, str(result["batch"]), "out of memory"])
                continue
            per_clip = result["flops"] / result["batch"] if result["flops"] else None
            alone.rows.append(
                [
                    label,
                    device,
                    dtype,
                    str(result["batch"]),
                    measure.milliseconds(result["seconds"]),
                    f"**{measure.rate(16 * result['batch'] / result['seconds'])}**",
                    f"{result['compile_s']:.1f}",
                    f"{per_clip / 1e9:.1f}" if per_clip else "n/a",
                    mfu_cell(result, backend, device, dtype),
                ]
            )
        alone.figures[name] = {
            "backend": backend,
            "best_frames_per_s": max(
                16 * r["batch"] / r["seconds"] for r in results if "seconds" in r
            ),
            "latency_s": latency,
        }
        if latency is not None:
            latency_table.rows.append(
                [label, device, dtype, f"**{measure.milliseconds(latency)}**"]
            )
        generate = whole_generate(weights, args)
        whole.rows.append(
            [
                label,
                device,
                dtype,
                f"{generate['audio_seconds']:g} s ({generate['frames']} frames, "
                f"{generate['windows']} windows)",
                f"{generate['seconds']:.3g}",
                f"**{measure.rate(generate['frames'] / generate['seconds'])}**",
                f"{1e3 * generate['seconds'] / generate['frames']:.3g}",
                f"{1e3 * generate['mel_seconds']:.3g}",
                f"{generate['first_call_s']:.1f}",
            ]
        )
        whole.figures[name] = {
            "backend": backend,
            "frames_per_s": generate["frames"] / generate["seconds"],
        }
        print(f"{name}: done", file=sys.stderr, flush=True)
    if backend != "gpu":
        for name in names:
            _, dtype, label = CONFIGS[name]
            for table in (alone, latency_table, whole):
                table.rows.append([label, "GPU", dtype, measure.NO_GPU])
    timing = measure.timing_note(
        repeats=args.repeats, iterations=args.iterations, warmup=args.warmup
    )
    alone.notes.append(
        f"{timing.capitalize()}; inputs already on the device; output float32 left on the device. "
        "FLOPs from XLA's cost analysis of the lowered call; MFU against the device's dense "
        "peak for the dtype (GPU only)."
    )
    latency_table.notes.append(
        f"Median of {args.latency_repeats} single calls, each blocked before the next."
    )
    whole.notes.append(
        f"Median of {args.repeats} calls after one compiling call. The paper: "
        f"{PAPER_SECONDS_PER_FRAME * 1e3:g} ms per frame ({1 / PAPER_SECONDS_PER_FRAME:.0f} "
        "frames/s) on a GTX 1080 Ti. lipjax.inference.generate runs windows of 16 frames "
        "with hop 8 "
        "(each frame is generated twice and blended), so its frames/s is about half the "
        "model-alone figure at the same batch."
    )
    measure.add_load_warning(whole.notes)
    return [alone, latency_table, whole]


def default_batches(backend: str, config_name: str, quick: bool) -> list[int]:
    if quick:
        return [1, 2]
    if backend == "gpu":
        return [1, 16, 64, 256, 1024]
    return [1, 4] if config_name == "grid" else [1, 8, 32]


def mfu_cell(result: dict, backend: str, device: str, dtype: str) -> str:
    if not result["flops"]:
        return "n/a"
    achieved = result["flops"] / result["seconds"] / 1e12
    peak = measure.peak_tflops(device, dtype) if backend == "gpu" else None
    if peak:
        return f"{100 * achieved / peak:.1f}%"
    return f"n/a ({1e3 * achieved:.0f} GFLOP/s)"


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_bool("quick", False, "tiny models, batches 1 and 2")
    flags.DEFINE_string("configs", ",".join(CONFIGS), ",".join(CONFIGS))
    flags.DEFINE_string("batches", "", "clips per call, e.g. 1,16,64")
    flags.DEFINE_integer("iterations", None, "calls per repeat")
    flags.DEFINE_integer("warmup", None, "untimed calls first")
    flags.DEFINE_integer("repeats", None, "repeats (the median counts)")
    flags.DEFINE_integer("latency_repeats", None, "single calls timed for one clip's latency")
    flags.DEFINE_string("json", None, "also write the tables here (run_all)")


def arguments_from_flags() -> types.SimpleNamespace:
    """The parsed flags as the attributes `run` reads, the settings left unset filled in
    for the backend."""
    args = types.SimpleNamespace(**FLAGS.flag_values_dict())
    for name in args.configs.split(","):
        if name not in CONFIGS:
            raise app.UsageError(f"--configs: unknown {name!r}; choose from {','.join(CONFIGS)}")
    import jax

    on_gpu = jax.default_backend() == "gpu"
    defaults = (2, 1, 1, 3) if args.quick else ((20, 3, 3, 50) if on_gpu else (2, 1, 3, 5))
    names = ("iterations", "warmup", "repeats", "latency_repeats")
    measure.set_defaults(args, names, defaults)
    return args


if __name__ == "__main__":
    measure.launch(SCRIPT, define_flags, arguments_from_flags, run)
