"""Transposed against sub-pixel up-sampling, native against taps 3D convolutions, and the
paper's transposed layer computed natively or as its exact sub-pixel decomposition
("phases"), on the current backend: which implementation "auto" should pick where.

    python benchmarks/upsampling.py [--quick] [--batch=2] [--dtypes=float32] [--json=PATH]

Two measurements per (upsample, conv3d_impl, upsample_impl, dtype):
- the decoder's two up-sampling blocks (`lipjax.models.layers.UpsampleBlock`, 256->128->64
  channels, 16x16 -> 64x64 over 16 frames, + BatchNorm + ReLU), forward and forward +
  backward (gradients of the parameters and the input), in training mode;
- the whole paper-size generator (`experiments/grid.py`'s model), forward + backward.
"transposed"/"native" is `lax.conv_transpose` whatever conv3d_impl says, so its up-sampling
blocks are timed once; "transposed"/"phases" is the same function and parameters computed
as one stride-1 convolution + depth-to-space, and honours conv3d_impl. "subpixel" (Conv3D
to 4x channels, ICNR) is a different layer spanning the same family of 2x up-samplings.
The fastest exact row of each backend is what `layers.FASTEST_IMPLS` should say there.
"""

from __future__ import annotations

import functools
import pathlib
import sys
import types

import measure
from absl import app, flags

SCRIPT = pathlib.Path(__file__).resolve()
# (upsample, conv3d_impl, upsample_impl); the first is the paper's layer computed natively.
VARIANTS = (
    ("transposed", "native", "native"),
    ("transposed", "taps", "native"),
    ("transposed", "native", "phases"),
    ("transposed", "taps", "phases"),
    ("subpixel", "native", "-"),
    ("subpixel", "taps", "-"),
)


def time_function(args, function, *inputs) -> tuple[float, float]:
    """(seconds per call, compile seconds) of `function` of `inputs`, jitted."""
    import jax

    seconds, compile_s, _, _ = measure.compile_and_time(
        jax.jit(function),
        *inputs,
        warmup=args.warmup,
        iterations=args.iterations,
        repeats=args.repeats,
    )
    return seconds, compile_s


def upsampling_blocks(mode: str, impl: str, upsample_impl: str, dtype, width: float):
    """The decoder's two up-sampling blocks as one flax module."""
    import flax.linen as nn

    from lipjax.models.layers import UpsampleBlock, scale_width

    class Blocks(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool):
            for index, channels in enumerate((128, 64)):
                x = UpsampleBlock(
                    scale_width(channels, width),
                    mode,
                    conv3d_impl=impl,
                    upsample_impl="native" if upsample_impl == "-" else upsample_impl,
                    dtype=dtype,
                    name=f"up_{index + 1}",
                )(x, train)
            return x

    return Blocks()


def training_losses(module, variables, *inputs, input_gradients: bool):
    """forward(params, *inputs) and forward+backward(params, *inputs) of sum(output) in
    training mode (BatchNorm on batch statistics, as in a training step); the backward
    pass also gives the inputs' gradients when `input_gradients` (a block inside a
    network needs them, the generator's own inputs do not)."""
    import jax
    import jax.numpy as jnp

    stats = variables.get("batch_stats", {})

    def loss(params, *args):
        out, _ = module.apply(
            {"params": params, "batch_stats": stats}, *args, train=True, mutable=["batch_stats"]
        )
        out = out[0] if isinstance(out, tuple) else out
        return jnp.sum(out.astype(jnp.float32))

    argnums = tuple(range(1 + len(inputs))) if input_gradients else 0
    return loss, jax.grad(loss, argnums=argnums)


def measure_backend(args) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from lipjax import configs
    from lipjax.models import Generator
    from lipjax.models.layers import scale_width

    config = configs.dataset_config("grid")
    if args.quick:
        configs.smoke(config)
    model = config.model
    time_it = functools.partial(time_function, args)
    key = jax.random.key(0)
    results = []
    for dtype_name in args.dtypes.split(","):
        dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype_name]
        features = jax.random.normal(
            key, (args.batch, 16, 16, 16, scale_width(256, model.width)), jnp.float32
        )
        audio = jax.random.normal(key, (args.batch, 64, 128, 1), jnp.float32)
        identity = jax.random.uniform(key, (args.batch, 64, 64, 3), jnp.float32, -1, 1)
        for mode, impl, upsample_impl in args.variants:
            row = {
                "upsample": mode,
                "conv3d_impl": impl,
                "upsample_impl": upsample_impl,
                "dtype": dtype_name,
            }
            if (mode, impl, upsample_impl) != ("transposed", "taps", "native"):
                blocks = upsampling_blocks(mode, impl, upsample_impl, dtype, model.width)
                variables = blocks.init(key, features, train=False)
                forward, backward = training_losses(
                    blocks, variables, features, input_gradients=True
                )
                row["blocks_forward"], _ = time_it(forward, variables["params"], features)
                row["blocks_backward"], row["blocks_compile"] = time_it(
                    backward, variables["params"], features
                )
            generator = Generator(
                width=model.width,
                num_residual_blocks=model.generator_residual_blocks,
                upsample=mode,
                conv3d_impl=impl,
                upsample_impl="native" if upsample_impl == "-" else upsample_impl,
                output_kernel=model.output_kernel,
                dtype=dtype,
            )
            variables = generator.init(key, audio, identity, train=False)
            _, backward = training_losses(
                generator, variables, audio, identity, input_gradients=False
            )
            row["generator_backward"], row["generator_compile"] = time_it(
                backward, variables["params"], audio, identity
            )
            results.append(row)
            print(f"{mode}/{impl}/{upsample_impl}/{dtype_name}: done", file=sys.stderr, flush=True)
    return results


def run(args) -> list[measure.Table]:
    import jax

    backend = jax.default_backend()
    device = jax.devices()[0].device_kind
    table = measure.Table(
        "Up-sampling: transposed vs sub-pixel, native vs taps"
        + (" (quick sizes)" if args.quick else ""),
        [
            "upsample",
            "conv3d_impl",
            "upsample_impl",
            "device",
            "dtype",
            "batch",
            "2 up-sampling blocks fwd (ms)",
            "fwd + bwd (ms)",
            "whole generator fwd + bwd (ms)",
            "compile, blocks / generator (s)",
        ],
    )
    results = measure_backend(args)
    for row in results:
        has_blocks = "blocks_forward" in row
        table.rows.append(
            [
                row["upsample"],
                row["conv3d_impl"],
                row["upsample_impl"],
                device,
                row["dtype"],
                str(args.batch),
                measure.milliseconds(row["blocks_forward"]) if has_blocks else "as native/native",
                measure.milliseconds(row["blocks_backward"]) if has_blocks else "as native/native",
                f"**{measure.milliseconds(row['generator_backward'])}**",
                (f"{row['blocks_compile']:.1f} / " if has_blocks else "- / ")
                + f"{row['generator_compile']:.1f}",
            ]
        )
    for dtype in args.dtypes.split(","):
        rows = [r for r in results if r["dtype"] == dtype and r["upsample"] == "transposed"]
        key = ("upsample", "conv3d_impl", "upsample_impl")
        paper = next((r for r in rows if tuple(r[k] for k in key) == VARIANTS[0]), None)
        if paper is None or not rows:
            continue
        best = min(rows, key=lambda r: r["generator_backward"])
        speedup = paper["generator_backward"] / best["generator_backward"]
        table.notes.append(
            f"{backend} {dtype}: the fastest exact generator training pass (the paper's "
            f"transposed layer) is conv3d_impl={best['conv3d_impl']}, "
            f"upsample_impl={best['upsample_impl']}, {speedup:.2f}x native/native."
        )
    if backend != "gpu":
        for dtype in ("float32", "bfloat16"):
            for mode, impl, upsample_impl in VARIANTS:
                table.rows.append([mode, impl, upsample_impl, "GPU", dtype, "", measure.NO_GPU])
    timing = measure.timing_note(
        repeats=args.repeats, iterations=args.iterations, warmup=args.warmup
    )
    table.notes.append(
        f"{timing.capitalize()}. Training mode (BatchNorm on batch statistics); fwd + bwd = "
        "gradients of sum(output) with respect to the parameters (and, for the blocks, their "
        "input)."
    )
    measure.add_load_warning(table.notes)
    return [table]


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_bool("quick", False, "tiny generator, batch 1")
    flags.DEFINE_integer("batch", None, "default: 24 on GPU, 2 on CPU")
    flags.DEFINE_string("dtypes", "", "default: float32,bfloat16 on GPU")
    flags.DEFINE_string(
        "variants",
        ",".join("/".join(variant) for variant in VARIANTS),
        "upsample/conv3d_impl/upsample_impl triples",
    )
    flags.DEFINE_integer("iterations", None, "calls per repeat")
    flags.DEFINE_integer("warmup", None, "untimed calls first")
    flags.DEFINE_integer("repeats", None, "repeats (the median counts)")
    flags.DEFINE_string("json", None, "also write the tables here (run_all)")


def arguments_from_flags() -> types.SimpleNamespace:
    """The parsed flags as the attributes `run` reads: `variants` as (upsample, conv3d_impl,
    upsample_impl) tuples, the settings left unset filled in for the backend."""
    args = types.SimpleNamespace(**FLAGS.flag_values_dict())
    args.variants = [tuple(variant.split("/")) for variant in args.variants.split(",")]
    for variant in args.variants:
        if variant not in VARIANTS:
            raise app.UsageError(f"--variants: unknown {'/'.join(variant)}")
    import jax

    on_gpu = jax.default_backend() == "gpu"
    if args.batch is None:
        args.batch = 1 if args.quick else (24 if on_gpu else 2)
    if not args.dtypes:
        args.dtypes = "float32,bfloat16" if on_gpu else "float32"
    defaults = (2, 1, 1) if args.quick else ((10, 2, 3) if on_gpu else (1, 1, 3))
    names = ("iterations", "warmup", "repeats")
    measure.set_defaults(args, names, defaults)
    return args


if __name__ == "__main__":
    measure.launch(SCRIPT, define_flags, arguments_from_flags, run)
