"""lipjax's paper-size generator against the same network in PyTorch, in one process.

    pip install -e .[bench]   # PyTorch (CPU wheel is enough)
    python benchmarks/peer.py [--quick] [--batch=2] [--repeats=3] [--json=PATH]

The peer is our own PyTorch transcription of `lipjax.models.Generator` at the paper's sizes
(SPEC "Generator": audio encoder, identity encoder, fusion by duplication, a k3 Conv3d,
9 residual blocks, two ConvTranspose3d up-samplings, the k7 Conv3d to RGB); its parameter
count is asserted equal to lipjax's. Both run with the same number of threads. Timed,
interleaved peer then lipjax in each repeat, after a warm-up (and jit compile):
- generate: the generator in eval mode on a batch of 16-frame clips (PyTorch under
  `torch.inference_mode`, lipjax jitted);
- train step: forward in training mode, L1 to a target video, backward and an Adam step
  of the generator (optax.adam; torch.optim.Adam).
Prints seconds per clip and the ratio peer time / lipjax time (> 1: lipjax is faster).
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
import time
import types

import measure
from absl import flags

SCRIPT = pathlib.Path(__file__).resolve()
PAPER_GENERATOR_PARAMETERS = 16_695_267  # SPEC, and lipjax's experiments/grid.py generator


def build_peer(torch, width_channels=(32, 64, 128, 256), residual_blocks: int = 9):
    """The paper's generator in PyTorch (NCHW / NCDHW), with lipjax's layer sizes."""
    nn = torch.nn

    def block2d(cin, cout, kernel, stride, padding, padding_mode="zeros"):
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, padding, bias=False, padding_mode=padding_mode),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class Residual(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv3d(channels, channels, (1, 3, 3), 1, (0, 1, 1), bias=False),
                nn.BatchNorm3d(channels),
                nn.ReLU(inplace=True),
                nn.Conv3d(channels, channels, (1, 3, 3), 1, (0, 1, 1), bias=False),
                nn.BatchNorm3d(channels),
            )

        def forward(self, x):
            return x + self.body(x)

    c32, c64, c128, c256 = width_channels

    class PeerGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.audio = nn.Sequential(
                block2d(1, c32, 3, 1, 1),
                block2d(c32, c64, 3, 2, 1),
                block2d(c64, c128, 3, 1, 1),
                block2d(c128, c256, 3, 2, 1),
                block2d(c256, c256, 3, (1, 2), 1),
            )
            self.identity = nn.Sequential(
                block2d(3, c64, 7, 1, 3, padding_mode="reflect"),
                block2d(c64, c128, 3, 2, 1),
                block2d(c128, c256, 3, 2, 1),
            )
            self.decoder = nn.Sequential(
                nn.Conv3d(2 * c256, c256, 3, 1, 1, bias=False),
                nn.BatchNorm3d(c256),
                nn.ReLU(inplace=True),
                *[Residual(c256) for _ in range(residual_blocks)],
                *[
                    layer
                    for cin, cout in ((c256, c128), (c128, c64))
                    for layer in (
                        nn.ConvTranspose3d(
                            cin, cout, 3, (1, 2, 2), 1, output_padding=(0, 1, 1), bias=False
                        ),
                        nn.BatchNorm3d(cout),
                        nn.ReLU(inplace=True),
                    )
                ],
                nn.Conv3d(c64, 3, 7, 1, 3),
                nn.Tanh(),
            )

        def forward(self, spectrogram, identity):
            audio = self.audio(spectrogram)  # (B, C_s, T, F)
            image = self.identity(identity)  # (B, C_p, H, W)
            frames = audio.shape[2]
            height = image.shape[2]
            # Fig. 3: audio frequency along the image width, copied along H; image per frame.
            audio = audio[:, :, :, None, :].expand(-1, -1, -1, height, -1)
            image = image[:, :, None].expand(-1, -1, frames, -1, -1)
            return self.decoder(torch.cat([audio, image], dim=1))

    return PeerGenerator()


def median_seconds(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def lipjax_functions(args):
    """lipjax's generate and train-step callables (compiled), and its parameter count."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from lipjax import configs
    from lipjax.models import build_generator

    config = configs.dataset_config("grid")
    if args.quick:
        configs.smoke(config)
        config.model.upsample = "transposed"  # the paper's layer, as the peer's
    config.model.conv3d_impl = args.conv3d_impl
    config.model.upsample_impl = args.upsample_impl
    generator = build_generator(config.model)
    rng = np.random.default_rng(0)
    audio = jnp.asarray(rng.standard_normal((args.batch, 64, 128, 1), np.float32))
    identity = jnp.asarray(rng.uniform(-1, 1, (args.batch, 64, 64, 3)).astype(np.float32))
    target = jnp.asarray(rng.uniform(-1, 1, (args.batch, 16, 64, 64, 3)).astype(np.float32))
    variables = generator.init(jax.random.key(0), audio, identity, train=False)
    params, stats = variables["params"], variables["batch_stats"]
    optimizer = optax.adam(2e-4, 0.5, 0.999)
    state = {"params": params, "stats": stats, "opt": optimizer.init(params)}

    @jax.jit
    def generate(params, stats, audio, identity):
        video, _ = generator.apply(
            {"params": params, "batch_stats": stats}, audio, identity, train=False
        )
        return video

    @jax.jit
    def train_step(params, stats, opt_state, audio, identity, target):
        def loss(params):
            (video, _), updates = generator.apply(
                {"params": params, "batch_stats": stats},
                audio,
                identity,
                train=True,
                mutable=["batch_stats"],
            )
            return jnp.mean(jnp.abs(video - target)), updates["batch_stats"]

        (value, new_stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, value

    def run_generate():
        generate(state["params"], state["stats"], audio, identity).block_until_ready()

    def run_train():
        out = train_step(state["params"], state["stats"], state["opt"], audio, identity, target)
        jax.block_until_ready(out)
        state["params"], state["stats"], state["opt"] = out[:3]

    count = sum(x.size for x in jax.tree.leaves(params))
    return run_generate, run_train, count


def peer_functions(torch, args):
    torch.manual_seed(0)
    if args.quick:  # the smoke config's widths (0.125) and one residual block
        model = build_peer(torch, (4, 8, 16, 32), residual_blocks=1)
    else:
        model = build_peer(torch)
    generator_rng = torch.Generator().manual_seed(0)
    audio = torch.randn(args.batch, 1, 64, 128, generator=generator_rng)
    identity = torch.rand(args.batch, 3, 64, 64, generator=generator_rng) * 2 - 1
    target = torch.rand(args.batch, 3, 16, 64, 64, generator=generator_rng) * 2 - 1
    optimizer = torch.optim.Adam(model.parameters(), 2e-4, betas=(0.5, 0.999))

    def run_generate():
        model.eval()
        with torch.inference_mode():
            model(audio, identity)

    def run_train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = (model(audio, identity) - target).abs().mean()
        loss.backward()
        optimizer.step()

    count = sum(p.numel() for p in model.parameters())
    return run_generate, run_train, count


def run(args) -> list[measure.Table]:
    try:
        import torch
    except ImportError:
        print(
            "benchmarks/peer.py needs PyTorch: pip install -e .[bench] (skipped)", file=sys.stderr
        )
        return []
    import jax

    threads = args.threads or measure.usable_cores()
    torch.set_num_threads(threads)
    peer_generate, peer_train, peer_count = peer_functions(torch, args)
    ours_generate, ours_train, ours_count = lipjax_functions(args)
    if peer_count != ours_count:
        raise AssertionError(f"parameter counts differ: peer {peer_count:,}, lipjax {ours_count:,}")
    if not args.quick and ours_count != PAPER_GENERATOR_PARAMETERS:
        raise AssertionError(f"lipjax's generator has {ours_count:,} parameters, not the paper's")
    print(f"parameters: {ours_count:,} in both", file=sys.stderr, flush=True)

    results = {}
    for name, peer, ours in (
        ("generate", peer_generate, ours_generate),
        ("train step", peer_train, ours_train),
    ):
        start = time.perf_counter()
        ours()  # compile + first run
        compile_s = time.perf_counter() - start
        peer()  # warm-up
        peer_times, ours_times = [], []
        for _ in range(args.repeats):  # interleaved, so that shared-CPU load hits both alike
            peer_times += median_seconds(peer, 1)
            ours_times += median_seconds(ours, 1)
        results[name] = (statistics.median(peer_times), statistics.median(ours_times), compile_s)
        print(f"{name}: done", file=sys.stderr, flush=True)

    table = measure.Table(
        "lipjax against a PyTorch peer: the paper-size generator"
        + (" (quick sizes)" if args.quick else ""),
        [
            "measurement",
            "batch",
            "PyTorch s/clip",
            "lipjax s/clip",
            "ratio PyTorch / lipjax",
            "lipjax compile (s)",
        ],
    )
    for name, (peer_s, ours_s, compile_s) in results.items():
        table.rows.append(
            [
                name,
                str(args.batch),
                f"{peer_s / args.batch:.3f}",
                f"{ours_s / args.batch:.3f}",
                f"**{peer_s / ours_s:.2f}**",
                f"{compile_s:.1f}",
            ]
        )
    table.notes.append(
        f"{ours_count:,} generator parameters in both. lipjax: model.conv3d_impl="
        f"{args.conv3d_impl}, model.upsample_impl={args.upsample_impl} on "
        f"{jax.default_backend()} (jax {jax.__version__}); PyTorch {torch.__version__} with "
        f"torch.set_num_threads({threads}) (interop {torch.get_num_interop_threads()}); "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; {os.cpu_count()} CPUs visible."
    )
    table.notes.append(
        f"Median of {args.repeats} interleaved runs (peer then lipjax) after one warm-up run "
        "each; random weights and data, float32. Train step = forward (batch statistics), L1 "
        "to a target, backward, Adam (lr 2e-4, betas 0.5/0.999) of the generator alone."
    )
    measure.add_load_warning(table.notes)
    return [table]


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line's flags (defined on demand, so that importing this module defines none)."""
    flags.DEFINE_bool("quick", False, "tiny generator (smoke widths)")
    flags.DEFINE_integer("batch", 2, "clips per call")
    flags.DEFINE_integer("repeats", 3, "interleaved runs of each (the median counts)")
    flags.DEFINE_integer("threads", 0, "0: the usable cores")
    flags.DEFINE_string("conv3d_impl", "auto", "lipjax's model.conv3d_impl")
    flags.DEFINE_string("upsample_impl", "auto", "lipjax's model.upsample_impl")
    flags.DEFINE_string("json", None, "also write the table here (run_all)")


def arguments_from_flags() -> types.SimpleNamespace:
    """The parsed flags as the attributes `run` reads (no setting depends on the backend)."""
    return types.SimpleNamespace(**FLAGS.flag_values_dict())


if __name__ == "__main__":
    measure.launch(SCRIPT, define_flags, arguments_from_flags, run)
