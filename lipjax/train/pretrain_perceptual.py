"""Pretraining of the perceptual-loss autoencoder (paper Sec. 4.1; docs/design.md,
"Perceptual loss").

`PerceptualAutoencoder` learns to reconstruct single lip frames of the training split (L1
loss on frames in [-1, 1]; BatchNorm in training mode, running statistics kept for eval).
Its frozen encoder then gives the (16, 16, 256 * width) feature maps of l_perc; get it with
`load_perceptual_encoder`.

Files written in the workdir: `perceptual/` (orbax: {"params", "batch_stats"} of the whole
autoencoder, with width, residual blocks and up-sampling mode as metadata),
`perceptual_report.json`; with both present `run` returns the saved report without training.
`perceptual_progress/` holds a resumable checkpoint every `perceptual.checkpoint_every` steps
while training (removed at the end).

    python -m lipjax.main --config=experiments/synthetic.py --config.stage=perceptual \
        --workdir=/tmp/perceptual
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from lipjax import checkpointing
from lipjax.data import datasets
from lipjax.models.perceptual import PerceptualAutoencoder, PerceptualEncoder
from lipjax.train.loop import loss_summary, train_resumable, uint8_to_unit

logger = logging.getLogger(__name__)

PERCEPTUAL_CHECKPOINT = "perceptual"
PERCEPTUAL_REPORT = "perceptual_report.json"
PROGRESS_DIR = "perceptual_progress"
FRAME_SIZE = 64

_STREAM_TRAIN_BATCHES = 1
_STREAM_FRAMES = 2


def sample_frames(source, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """`num_frames` distinct frames (N, 64, 64, 3) uint8 spread evenly over the utterances of
    a data source (fewer if the corpus is smaller)."""
    per_utterance = max(1, -(-num_frames // len(source)))
    frames = []
    for index in rng.permutation(len(source)):
        video = source[int(index)]["frames"]
        take = min(per_utterance, len(video), num_frames - len(frames))
        frames.extend(video[rng.choice(len(video), size=take, replace=False)])
        if len(frames) >= num_frames:
            break
    return np.stack(frames)


def psnr_uint8(reconstruction: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Per-frame PSNR in dB of reconstructions in [-1, 1] against uint8 frames, both taken to
    uint8 values and compared in float (no uint8 wrap-around)."""
    restored = np.round(np.clip((reconstruction + 1.0) * 127.5, 0, 255))
    error = restored - frames.astype(np.float64)
    mse = np.mean(np.square(error), axis=tuple(range(1, frames.ndim)))
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


def make_train_step(model: PerceptualAutoencoder, optimizer: optax.GradientTransformation):
    """Jitted step on {"params", "batch_stats", "opt_state"} and a batch (frames,): L1
    reconstruction loss, BatchNorm with batch statistics (running averages updated)."""

    @jax.jit
    def train_step(state, batch):
        (frames,) = batch

        def loss_fn(params):
            variables = {"params": params, "batch_stats": state["batch_stats"]}
            reconstruction, updates = model.apply(
                variables, frames, train=True, mutable=["batch_stats"]
            )
            loss = jnp.mean(jnp.abs(reconstruction.astype(jnp.float32) - frames))
            return loss, updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "batch_stats": batch_stats, "opt_state": opt_state}, loss

    return train_step


def reconstruct(model: PerceptualAutoencoder, variables: Any, frames: np.ndarray, batch=64):
    """Eval-mode reconstructions (N, 64, 64, 3) in [-1, 1] of uint8 frames."""
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    outputs = []
    for begin in range(0, len(frames), batch):
        chunk = uint8_to_unit(frames[begin : begin + batch])
        outputs.append(np.asarray(apply(variables, chunk), np.float64))
    return np.concatenate(outputs)


def load_perceptual_autoencoder(path: str | os.PathLike) -> tuple[PerceptualAutoencoder, Any]:
    """(PerceptualAutoencoder as trained, variables {"params", "batch_stats"})."""
    variables, metadata = checkpointing.restore_tree(path)
    model = PerceptualAutoencoder(
        width=float(metadata["width"]),
        num_residual_blocks=int(metadata["num_residual_blocks"]),
        upsample=str(metadata["upsample"]),
    )
    return model, variables


def load_perceptual_encoder(path: str | os.PathLike) -> tuple[PerceptualEncoder, Any]:
    """The frozen feature extractor phi of l_perc: (PerceptualEncoder, variables).

    `encoder.apply(variables, frames, train=False)` maps frames (N, 64, 64, 3) in [-1, 1] to
    features (N, 16, 16, 256 * width) with BatchNorm's running statistics (eval mode); fold
    the time axis of videos into N.
    """
    variables, metadata = checkpointing.restore_tree(path)
    encoder = PerceptualEncoder(
        width=float(metadata["width"]), num_residual_blocks=int(metadata["num_residual_blocks"])
    )
    encoder_variables = {
        "params": variables["params"]["encoder"],
        "batch_stats": variables["batch_stats"]["encoder"],
    }
    return encoder, encoder_variables


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict:
    """Train the perceptual autoencoder and return the report (validation PSNR); returns the
    saved report at once when `workdir` already holds the checkpoint and report."""
    settings = config
    options = settings.perceptual
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint, report_path = workdir / PERCEPTUAL_CHECKPOINT, workdir / PERCEPTUAL_REPORT
    if checkpoint.exists() and report_path.exists():
        logger.info("perceptual autoencoder already trained in %s; returning its report", workdir)
        return json.loads(report_path.read_text())

    started = time.perf_counter()
    builder = datasets.open_builder(settings.dataset, settings.data_dir)

    def frames_of(split: str, count: int) -> np.ndarray:
        rng = np.random.default_rng([settings.seed, _STREAM_FRAMES, zlib.crc32(split.encode())])
        return sample_frames(builder.as_data_source(split=split), count, rng)

    train_source = builder.as_data_source(split="train")
    train_frames = frames_of("train", options.frames_per_utterance * len(train_source))
    validation_frames = frames_of("validation", options.validation_frames)
    data_wall_s = time.perf_counter() - started

    model = PerceptualAutoencoder(
        width=options.width,
        num_residual_blocks=options.num_residual_blocks,
        upsample=options.upsample,
    )
    variables = model.init(
        jax.random.key(settings.seed), jnp.zeros((1, FRAME_SIZE, FRAME_SIZE, 3)), train=False
    )
    optimizer = optax.adam(options.learning_rate)
    state = {
        "params": variables["params"],
        "batch_stats": variables["batch_stats"],
        "opt_state": optimizer.init(variables["params"]),
    }

    def make_batch(step: int) -> tuple[np.ndarray]:
        rng = np.random.default_rng([settings.seed, _STREAM_TRAIN_BATCHES, step])
        frames = uint8_to_unit(train_frames[rng.integers(0, len(train_frames), options.batch_size)])
        flip = rng.random(options.batch_size) < 0.5
        return (np.where(flip[:, None, None, None], frames[:, :, ::-1], frames),)

    result = train_resumable(
        state=state,
        train_step=make_train_step(model, optimizer),
        make_batch=make_batch,
        num_steps=options.steps,
        progress_dir=workdir / PROGRESS_DIR,
        description="perceptual autoencoder",
        log_every=options.log_every,
        checkpoint_every=options.checkpoint_every,
    )
    variables = {
        "params": result.state["params"],
        "batch_stats": result.state["batch_stats"],
    }
    feature_channels = int(variables["params"]["encoder"]["conv_3"]["conv"]["kernel"].shape[-1])
    psnr = psnr_uint8(reconstruct(model, variables, validation_frames), validation_frames)
    report = {
        "model": {
            "width": float(options.width),
            "num_residual_blocks": int(options.num_residual_blocks),
            "upsample": options.upsample,
            "num_params": int(sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))),
            "feature_shape": [16, 16, feature_channels],
        },
        "loss": "L1 on frames in [-1, 1]",
        "steps": options.steps,
        "batch_size": options.batch_size,
        "train_frames": len(train_frames),
        "data_wall_s": round(data_wall_s, 1),
        "train_wall_s": round(result.wall_s, 1),
        "resumed_from_step": result.resumed_from,
        **loss_summary(result.log),
        "validation_frames": len(validation_frames),
        "validation_psnr_db": float(np.mean(psnr)),
        "validation_psnr_db_min": float(np.min(psnr)),
        "loss_log": result.log,
        "checkpoint": str(checkpoint),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "config": settings.to_dict(),
    }
    metadata = {
        "width": float(options.width),
        "num_residual_blocks": int(options.num_residual_blocks),
        "upsample": str(options.upsample),
    }
    checkpointing.save_tree(checkpoint, variables, metadata)
    checkpointing.write_json(report_path, report)
    shutil.rmtree(workdir / PROGRESS_DIR, ignore_errors=True)
    return report
