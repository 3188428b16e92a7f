"""Pretraining of the differentiable optical flow, FlowNetS (Dosovitskiy et al., ICCV 2015).

The paper fine-tunes a FlyingChairs-pretrained FlowNet; those weights cannot be fetched here,
so (docs/design.md, "Optical flow") we train it in two stages:

* Stage A, "synthetic": generated FlyingChairs-like pairs with exact flow
  (`lipjax.data.flow_data.synthetic_flow_batch`), multi-scale end-point-error loss.
* Stage B, "finetune": consecutive lip-crop frames of the training split with classical TV-L1
  targets (Zach et al., DAGM 2007; scikit-image), computed once and cached in the workdir,
  mixed with a share of synthetic pairs so that the exact-flow skill is kept.

Both use Adam with coupled L2 weight decay 4e-4 (as PyTorch's Adam): stage B at the paper's
1e-4 (`flownet.learning_rate`), stage A from scratch at `flownet.synthetic_learning_rate`
(1e-3 by default: at 1e-4 a CPU-length run did not get below zero flow's error). Flows are
(dx, dy) in pixels of the 64x64 frames / 20, from the first frame of a pair to the second;
FlowNet's 16x16 output holds values in those same units (not rescaled to its grid).

Files written in the workdir:

* `flownet/`: the final FlowNetS params (orbax; `load_flownet`, `load_flownet_model`);
  `flownet_report.json`: the report. With both present, `run` returns the saved report.
* `flownet_synthetic/` and `flownet_synthetic_report.json`: the stage-A result; a rerun after
  a kill in stage B starts from it (resume at stage granularity).
* `flownet_progress/<stage>/`: params, optimiser state and loss log every
  `flownet.checkpoint_every` steps; a killed stage resumes from its last one (batches are a
  function of (seed, step), so the resumed run sees the same data). Removed when the stage
  ends.
* `lip_flow_targets_<split>.npz`: lip pairs (uint8) with their TV-L1 targets.

The resumable training loop (`lipjax.train.loop`) is shared with
`lipjax.train.pretrain_perceptual`.

    python -m lipjax.main --config=experiments/synthetic.py --config.stage=flownet \
        --workdir=/tmp/flownet
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
from lipjax.data import datasets, flow_data
from lipjax.models.flownet import FlowNetS, multiscale_epe
from lipjax.train import loop

logger = logging.getLogger(__name__)

FLOWNET_CHECKPOINT = "flownet"
FLOWNET_REPORT = "flownet_report.json"
SYNTHETIC_CHECKPOINT = "flownet_synthetic"
SYNTHETIC_REPORT = "flownet_synthetic_report.json"
PROGRESS_DIR = "flownet_progress"

FRAME_SIZE = 64
FLOW_RESOLUTION = 16  # FlowNetS's finest prediction for 64x64 frames (1/4 resolution)
# Pairs whose largest true displacement is at most this many pixels count as "small motion".
SMALL_MOTION_PX = 3.0

# Independent random streams, mixed into the seed: np.random.default_rng([seed, stream, ...]).
_STREAM_SYNTHETIC_TRAIN = 1
_STREAM_SYNTHETIC_EVAL = 2
_STREAM_FINETUNE_TRAIN = 3
_STREAM_LIP_PAIRS = 4


# -------------------------------------------------------------------- FlowNet parts


def _adam_with_l2(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate))


def make_optimizer(learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
    """Adam with coupled L2 weight decay, as PyTorch's `Adam(weight_decay=...)`.

    The hyperparameters live in the optimiser state, so one jitted step serves optimisers
    of any learning rate (stage A and stage B share one compilation).
    """
    return optax.inject_hyperparams(_adam_with_l2)(
        learning_rate=learning_rate, weight_decay=weight_decay
    )


def make_train_step(
    model: FlowNetS, optimizer: optax.GradientTransformation, epe_reduction: str = "sum"
):
    """Jitted step on {"params", "opt_state"} and a batch (pairs, target flow) where the target
    is at full resolution or at 16x16 (the loss pools it to every FlowNet scale);
    `epe_reduction` as `multiscale_epe`'s `reduction`."""

    @jax.jit
    def train_step(state, batch):
        pairs, target = batch

        def loss_fn(params):
            return multiscale_epe(
                model.apply({"params": params}, pairs), target, reduction=epe_reduction
            )

        loss, grads = jax.value_and_grad(loss_fn)(state["params"])
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt_state": opt_state}, loss

    return train_step


def make_flow_predictor(model: FlowNetS, batch_size: int = 64):
    """predict(params, pairs (N, 64, 64, 6) float in [-1, 1]) -> (N, 64, 64, 2) numpy: the
    finest FlowNet flow, up-sampled x4 bilinearly (values unchanged: pixels / 20)."""

    @jax.jit
    def predict_batch(params, pairs):
        finest = model.apply({"params": params}, pairs)[0]
        shape = (finest.shape[0], *pairs.shape[1:3], 2)
        return jax.image.resize(finest.astype(jnp.float32), shape, "bilinear")

    def predict(params, pairs: np.ndarray) -> np.ndarray:
        outputs = []
        for begin in range(0, len(pairs), batch_size):
            chunk = pairs[begin : begin + batch_size]
            padded = np.concatenate([chunk, np.zeros_like(chunk[: batch_size - len(chunk)])])
            outputs.append(np.asarray(predict_batch(params, padded))[: len(chunk)])
        return np.concatenate(outputs)

    return predict


def pool_flow(flow: np.ndarray, resolution: int = FLOW_RESOLUTION) -> np.ndarray:
    """Average-pool flows (N, H, W, 2) to (N, resolution, resolution, 2), as the loss does
    (`downsample_flow`, in NumPy)."""
    count, height, width, channels = flow.shape
    blocks = flow.reshape(
        count, resolution, height // resolution, resolution, width // resolution, channels
    )
    return blocks.mean(axis=(2, 4), dtype=np.float32)


def flip_horizontally(pairs: np.ndarray, flow: np.ndarray, flip: np.ndarray):
    """Mirror the selected pairs (N, H, W, C) and their flows (N, h, w, 2) left-right."""
    pairs = np.where(flip[:, None, None, None], pairs[:, :, ::-1], pairs)
    mirrored = flow[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)
    return pairs, np.where(flip[:, None, None, None], mirrored, flow)


def load_flownet(path: str | os.PathLike) -> Any:
    """FlowNetS params saved by `run`: use as `FlowNetS(width).apply({"params": params}, ...)`
    (or `video_flows(model.apply, {"params": params}, video)`)."""
    params, _ = checkpointing.restore_tree(path)
    return params


def load_flownet_model(path: str | os.PathLike) -> tuple[FlowNetS, Any]:
    """(FlowNetS of the saved width, params) from a checkpoint written by `run`."""
    params, metadata = checkpointing.restore_tree(path)
    if "width" in metadata:
        width = float(metadata["width"])
    else:  # conv1 has round(64 * width) output channels
        width = params["conv1"]["kernel"].shape[-1] / 64
    return FlowNetS(width=width), params


# ----------------------------------------------------------------------- lip targets


def sample_lip_pairs(source, num_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """`num_pairs` consecutive-frame pairs (N, 64, 64, 6) uint8 from a data source of
    utterances, spread evenly over the utterances (repeats only if the corpus has fewer
    pairs than asked for)."""
    order = rng.permutation(len(source))
    per_utterance = max(1, -(-num_pairs // len(source)))
    pairs = []
    while len(pairs) < num_pairs:
        for index in order:
            frames = source[int(index)]["frames"]
            available = len(frames) - 1
            if available < 1:
                continue
            take = min(per_utterance, available, num_pairs - len(pairs))
            for t in rng.choice(available, size=take, replace=False):
                pairs.append(np.concatenate([frames[t], frames[t + 1]], axis=-1))
            if len(pairs) >= num_pairs:
                break
        per_utterance *= 2  # short corpus: take more pairs from each utterance
    return np.stack(pairs)


def lip_flow_targets(
    settings: ml_collections.ConfigDict,
    split: str,
    num_pairs: int,
    workdir: Path,
    resolution: int | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Lip pairs of `split` with classical-flow targets (`flownet.finetune_targets`: TV-L1 or
    Farneback), cached in `workdir`.

    Returns (pairs (N, 64, 64, 6) uint8, flow (N, r, r, 2) float32 in pixels / 20 with r =
    `resolution` (None: full resolution), info). The cache is reused when it was made for the
    same dataset, seed and number of pairs.
    """
    method = settings.flownet.finetune_targets
    cache = workdir / f"lip_flow_targets_{split}.npz"
    key = f"{settings.dataset}|{settings.seed}|{num_pairs}|{resolution}"
    if method != "tvl1":  # caches made before the option hold TV-L1 targets under the old key
        key += f"|{method}"
    if cache.exists():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                info = {"target_wall_s": float(stored["target_wall_s"]), "cached": True}
                return stored["pairs"], stored["flow"], info
    source = datasets.open_split(settings.dataset, split, settings.data_dir)
    rng = np.random.default_rng([settings.seed, _STREAM_LIP_PAIRS, zlib.crc32(split.encode())])
    pairs = sample_lip_pairs(source, num_pairs, rng)
    started = time.perf_counter()
    flow = flow_data.classical_flows(
        pairs, method, settings.flownet.target_workers, description=f"{method} targets ({split})"
    )
    target_wall_s = time.perf_counter() - started
    if resolution is not None:
        flow = pool_flow(flow, resolution)
    temporary = cache.with_name(cache.stem + ".tmp.npz")
    np.savez_compressed(
        temporary, pairs=pairs, flow=flow, key=np.array(key), target_wall_s=target_wall_s
    )
    os.replace(temporary, cache)
    return pairs, flow, {"target_wall_s": target_wall_s, "cached": False}


# --------------------------------------------------------------------------- stages


def _synthetic_eval_set(settings: ml_collections.ConfigDict):
    rng = np.random.default_rng([settings.seed, _STREAM_SYNTHETIC_EVAL])
    return flow_data.synthetic_flow_batch(
        rng,
        settings.flownet.synthetic_eval_pairs,
        small_motion_share=settings.flownet.small_motion_share,
    )


def _synthetic_scores(predict, params, pairs, flow) -> dict[str, float]:
    predicted = predict(params, pairs)
    largest = np.linalg.norm(flow, axis=-1).max(axis=(1, 2)) * flow_data.FLOW_SCALE
    small = largest <= SMALL_MOTION_PX
    scores = {
        "flownet": flow_data.end_point_error(predicted, flow),
        "zero": flow_data.end_point_error(np.zeros_like(flow), flow),
    }
    if small.any():
        scores["flownet_small_motion"] = flow_data.end_point_error(predicted[small], flow[small])
        scores["zero_small_motion"] = flow_data.end_point_error(0 * flow[small], flow[small])
        scores["small_motion_pairs"] = int(small.sum())
    return scores


def init_flownet_params(model: FlowNetS, seed: int, output_init_scale: float = 1.0) -> Any:
    """FlowNetS params, with the kernels of the predict_flow layers scaled by
    `output_init_scale`."""
    params = model.init(jax.random.key(seed), jnp.zeros((1, FRAME_SIZE, FRAME_SIZE, 6)))
    params = dict(params["params"])
    for name, layer in params.items():
        if name.startswith("predict_flow"):
            params[name] = {**layer, "kernel": layer["kernel"] * output_init_scale}
    return params


def _synthetic_stage(settings, model, train_step, predict, workdir: Path):
    """Stage A: train from scratch on generated pairs; returns (params, report)."""
    options = settings.flownet
    params = init_flownet_params(model, settings.seed, options.output_init_scale)
    optimizer = make_optimizer(options.synthetic_learning_rate, options.weight_decay)
    state = {"params": params, "opt_state": optimizer.init(params)}

    # A short run never renders more pairs than it would have rendered fresh.
    refresh = options.synthetic_refresh_per_step
    pool_size = refresh * max(
        1, min(options.synthetic_pool_size // refresh, options.synthetic_steps)
    )
    pool = flow_data.SyntheticFlowPool(
        settings.seed,
        _STREAM_SYNTHETIC_TRAIN,
        options.batch_size,
        pool_size=pool_size,
        refresh_per_step=refresh,
        small_motion_share=options.small_motion_share,
        reduce_flow=pool_flow,
    )

    result = loop.train_resumable(
        state=state,
        train_step=train_step,
        make_batch=pool.batch,
        num_steps=options.synthetic_steps,
        progress_dir=workdir / PROGRESS_DIR / "synthetic",
        description="FlowNet synthetic",
        log_every=options.log_every,
        checkpoint_every=options.checkpoint_every,
    )
    params = result.state["params"]
    pairs, flow = _synthetic_eval_set(settings)
    scores = _synthetic_scores(predict, params, pairs, flow)
    tvl1_count = min(options.tvl1_eval_pairs, len(pairs))
    if tvl1_count:
        tvl1 = flow_data.classical_flows(
            pairs[:tvl1_count], "tvl1", options.target_workers, progress=False
        )
        scores["tvl1"] = flow_data.end_point_error(tvl1, flow[:tvl1_count])
        scores["flownet_on_tvl1_pairs"] = flow_data.end_point_error(
            predict(params, pairs[:tvl1_count]), flow[:tvl1_count]
        )
        scores["tvl1_pairs"] = tvl1_count
    report = {
        "steps": options.synthetic_steps,
        "batch_size": options.batch_size,
        "wall_s": round(result.wall_s, 1),
        "data_ms_per_batch": round(result.data_ms_per_batch, 1),
        "resumed_from_step": result.resumed_from,
        **loop.loss_summary(result.log),
        "heldout_pairs": len(pairs),
        "heldout_epe_px": scores,
        "loss_log": result.log,
    }
    return params, report


def _finetune_stage(settings, train_step, params, workdir: Path):
    """Stage B: fine-tune on lip pairs with TV-L1 targets (fresh Adam moments); returns
    (params, report)."""
    options = settings.flownet
    lip_pairs, lip_flow, target_info = lip_flow_targets(
        settings, "train", options.finetune_pairs, workdir, FLOW_RESOLUTION
    )
    optimizer = make_optimizer(options.learning_rate, options.weight_decay)
    state = {"params": params, "opt_state": optimizer.init(params)}
    synthetic_count = round(options.finetune_synthetic_share * options.batch_size)
    lip_count = options.batch_size - synthetic_count

    def make_batch(step: int):
        rng = np.random.default_rng([settings.seed, _STREAM_FINETUNE_TRAIN, step])
        chosen = rng.integers(0, len(lip_pairs), lip_count)
        pairs, flow = flip_horizontally(
            loop.uint8_to_unit(lip_pairs[chosen]), lip_flow[chosen], rng.random(lip_count) < 0.5
        )
        if synthetic_count:
            extra_pairs, extra_flow = flow_data.synthetic_flow_batch(
                rng, synthetic_count, small_motion_share=options.small_motion_share
            )
            pairs = np.concatenate([pairs, extra_pairs])
            flow = np.concatenate([flow, pool_flow(extra_flow)])
        return pairs.astype(np.float32), flow.astype(np.float32)

    result = loop.train_resumable(
        state=state,
        train_step=train_step,
        make_batch=make_batch,
        num_steps=options.finetune_steps,
        progress_dir=workdir / PROGRESS_DIR / "finetune",
        description="FlowNet fine-tune",
        log_every=options.log_every,
        checkpoint_every=options.checkpoint_every,
    )
    report = {
        "steps": options.finetune_steps,
        "batch_size": options.batch_size,
        "lip_pairs_per_batch": lip_count,
        "synthetic_pairs_per_batch": synthetic_count,
        "wall_s": round(result.wall_s, 1),
        "resumed_from_step": result.resumed_from,
        **loop.loss_summary(result.log),
        "target_pairs": len(lip_pairs),
        "target_wall_s": round(target_info["target_wall_s"], 1),
        "targets_cached": target_info["cached"],
        "loss_log": result.log,
    }
    return result.state["params"], report


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> dict:
    """Pretrain FlowNetS (stage A on generated pairs, stage B on lip crops) and return the
    report; see the module docstring for the files. Returns the saved report at once when
    `workdir` already holds the final checkpoint and report."""
    settings = config
    options = settings.flownet
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    final_checkpoint, report_path = workdir / FLOWNET_CHECKPOINT, workdir / FLOWNET_REPORT
    if final_checkpoint.exists() and report_path.exists():
        logger.info("FlowNet already pretrained in %s; returning its report", workdir)
        return json.loads(report_path.read_text())

    started = time.perf_counter()
    model = FlowNetS(width=options.width)
    # One jitted step for both stages: the learning rate is part of the optimiser state.
    train_step = make_train_step(model, make_optimizer(options.learning_rate, options.weight_decay))
    predict = make_flow_predictor(model)
    metadata = {"width": float(options.width)}

    stage_a_checkpoint = workdir / SYNTHETIC_CHECKPOINT
    stage_a_report_path = workdir / SYNTHETIC_REPORT
    if stage_a_checkpoint.exists() and stage_a_report_path.exists():
        params = load_flownet(stage_a_checkpoint)
        synthetic_report = json.loads(stage_a_report_path.read_text())
        logger.info("FlowNet stage A found in %s; skipping it", stage_a_checkpoint)
    else:
        params, synthetic_report = _synthetic_stage(settings, model, train_step, predict, workdir)
        checkpointing.save_tree(stage_a_checkpoint, params, metadata)
        checkpointing.write_json(stage_a_report_path, synthetic_report)
        shutil.rmtree(workdir / PROGRESS_DIR / "synthetic", ignore_errors=True)
    synthetic_params = params

    finetune_report: dict[str, Any] = {"steps": 0}
    if options.finetune_steps > 0:
        finetune_step = train_step
        if options.finetune_epe_reduction != "sum":
            finetune_step = make_train_step(
                model,
                make_optimizer(options.learning_rate, options.weight_decay),
                options.finetune_epe_reduction,
            )
        params, finetune_report = _finetune_stage(settings, finetune_step, params, workdir)
        finetune_report["epe_reduction"] = options.finetune_epe_reduction

    if options.validation_pairs > 0:
        pairs, target, info = lip_flow_targets(
            settings, "validation", options.validation_pairs, workdir, None
        )
        pairs = loop.uint8_to_unit(pairs)
        finetune_report["validation_pairs"] = len(pairs)
        finetune_report["validation_target_wall_s"] = round(info["target_wall_s"], 1)
        finetune_report["validation_epe_px_vs_tvl1"] = {
            "flownet": flow_data.end_point_error(predict(params, pairs), target),
            "flownet_before_finetune": flow_data.end_point_error(
                predict(synthetic_params, pairs), target
            ),
            "zero": flow_data.end_point_error(np.zeros_like(target), target),
        }
    if options.finetune_steps > 0:
        eval_pairs, eval_flow = _synthetic_eval_set(settings)
        finetune_report["synthetic_heldout_epe_px_after"] = _synthetic_scores(
            predict, params, eval_pairs, eval_flow
        )

    report = {
        "model": {
            "width": float(options.width),
            "num_params": int(sum(leaf.size for leaf in jax.tree.leaves(params))),
        },
        "synthetic": synthetic_report,
        "finetune": finetune_report,
        "checkpoint": str(final_checkpoint),
        "units": "EPE in pixels of the 64x64 frames; FlowNet's 16x16 flow up-sampled x4",
        "total_wall_s": round(time.perf_counter() - started, 1),
        "config": settings.to_dict(),
    }
    checkpointing.save_tree(final_checkpoint, params, metadata)
    checkpointing.write_json(report_path, report)
    shutil.rmtree(workdir / PROGRESS_DIR, ignore_errors=True)
    return report
