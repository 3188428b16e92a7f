"""A small CNN that finds the 20 mouth landmarks in a 64 x 64 lip crop, for LMD.

The paper detects lip landmarks with dlib to compute LMD (Sec. 5.2), but dlib does not see
our rendered synthetic faces, so on the `synthetic_lips` corpus LMD uses this regressor
instead. It is trained on the exact ground-truth landmarks of the training split, with
augmentations (small translation, scale and rotation of the crop, blur, colour and noise)
that make it robust to the blurrier, slightly shifted frames that a generator produces.

    python -m lipjax.cli.train_landmark_regressor --data_dir=/tmp/tfds_small --config=small \
        --workdir=DIR --steps=3000

trains one, saves it to DIR/landmark_regressor (orbax) with DIR/landmark_regressor_report.json
and prints the report. A trained regressor ships in lipjax/assets/landmark_regressor:
`load_regressor()` loads it, `predict_landmarks(variables, frames)` applies it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import pathlib
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from lipjax import checkpointing
from lipjax.data import crop
from lipjax.eval import metrics

NUM_LANDMARKS = crop.NUM_MOUTH_LANDMARKS
CROP_SIZE = crop.CROP_SIZE
# The network predicts offsets from the crop centre in units of half a crop (32 pixels).
_CENTRE = CROP_SIZE / 2.0
_UNIT = CROP_SIZE / 2.0
_NORM_GROUPS = 8  # fixed: the checkpoint's shapes do not tell it
CLIP_LENGTH = 16  # LMD is scored on clips of the generator's window length
CHECKPOINT_NAME = "landmark_regressor"
REPORT_NAME = "landmark_regressor_report.json"


def shipped_regressor_path() -> pathlib.Path:
    """Where the trained regressor that ships with lipjax lies (an orbax directory)."""
    return pathlib.Path(str(importlib.resources.files("lipjax") / "assets" / CHECKPOINT_NAME))


class LipLandmarkRegressor(nn.Module):
    """64 x 64 RGB crops in [-1, 1] (N, 64, 64, 3) -> landmark offsets (N, P, 2) from the crop
    centre in units of 32 pixels. Blocks of (3x3 conv stride 2, 3x3 conv), GroupNorm, ReLU,
    then flatten (keeping where things are) and two dense layers."""

    features: Sequence[int] = (16, 32, 64, 128)
    hidden: int = 128
    num_landmarks: int = NUM_LANDMARKS

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        x = images
        for index, width in enumerate(self.features):
            for name, stride in (("down", 2), ("conv", 1)):
                layer = f"block{index}_{name}"
                x = nn.Conv(width, (3, 3), stride, padding=1, use_bias=False, name=layer)(x)
                x = nn.GroupNorm(num_groups=_NORM_GROUPS, name=f"{layer}_norm")(x)
                x = nn.relu(x)
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
        offsets = nn.Dense(
            2 * self.num_landmarks, kernel_init=nn.initializers.zeros, name="output"
        )(x)
        return offsets.reshape(x.shape[0], self.num_landmarks, 2)


def _module_from_params(params) -> LipLandmarkRegressor:
    """The module whose parameters have these shapes (the architecture is in the shapes)."""
    num_blocks = len([name for name in params if name.endswith("_down")])
    features = tuple(int(params[f"block{i}_down"]["kernel"].shape[-1]) for i in range(num_blocks))
    return LipLandmarkRegressor(
        features=features,
        hidden=int(params["hidden"]["kernel"].shape[-1]),
        num_landmarks=int(params["output"]["kernel"].shape[-1]) // 2,
    )


def init_regressor(seed: int = 0, module: LipLandmarkRegressor | None = None) -> dict:
    """Fresh variables {"params": ...} of `module` (default architecture if None)."""
    module = module or LipLandmarkRegressor()
    dummy = jnp.zeros((1, CROP_SIZE, CROP_SIZE, 3), jnp.float32)
    return dict(module.init(jax.random.key(seed), dummy))


def count_parameters(variables) -> int:
    """Number of scalars in the variables."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(variables)))


def _offsets_to_pixels(offsets: jax.Array) -> jax.Array:
    return _CENTRE + _UNIT * offsets


def _to_network_range(frames) -> jax.Array:
    """uint8 [0, 255] -> float32 [-1, 1]; float input is taken to be in [-1, 1] already."""
    frames = jnp.asarray(frames)
    if frames.dtype == jnp.uint8:
        return frames.astype(jnp.float32) / 127.5 - 1.0
    return frames.astype(jnp.float32)


@functools.lru_cache(maxsize=8)
def _jitted_predict(module: LipLandmarkRegressor):
    @jax.jit
    def predict(variables, images):
        return _offsets_to_pixels(module.apply(variables, _to_network_range(images)))

    return predict


def predict_landmarks(variables, frames, batch_size: int = 256) -> np.ndarray:
    """Mouth landmarks (..., 20, 2) as (x, y) crop pixels of lip crops (..., 64, 64, 3),
    given as uint8 in [0, 255] or float in [-1, 1] (the generator's range)."""
    frames = np.asarray(frames)
    if frames.shape[-3:] != (CROP_SIZE, CROP_SIZE, 3):
        raise ValueError(f"frames: expected (..., 64, 64, 3) lip crops, got {frames.shape}")
    if frames.dtype != np.uint8:
        frames = frames.astype(np.float32)
        if frames.size and np.abs(frames).max() > 1.01:
            raise ValueError("float frames must be in [-1, 1]; pass uint8 for [0, 255]")
    module = _module_from_params(variables["params"])
    predict = _jitted_predict(module)
    flat = frames.reshape(-1, CROP_SIZE, CROP_SIZE, 3)
    count = flat.shape[0]
    if count == 0:
        return np.zeros((*frames.shape[:-3], module.num_landmarks, 2), np.float32)
    # Batches are padded to batch_size, or to a power of two for fewer frames, so that
    # clips of any length reuse a few compiled shapes.
    chunk = min(batch_size, 1 << (count - 1).bit_length())
    outputs = []
    for start in range(0, count, chunk):
        batch = flat[start : start + chunk]
        valid = batch.shape[0]
        if valid < chunk:
            batch = np.concatenate([batch, np.repeat(batch[-1:], chunk - valid, axis=0)])
        outputs.append(np.asarray(predict(variables, batch))[:valid])
    landmarks = np.concatenate(outputs)
    return landmarks.reshape(*frames.shape[:-3], module.num_landmarks, 2)


def save_regressor(variables, path) -> pathlib.Path:
    """Saves the variables at `path` (replaced if present; `lipjax.checkpointing.save_tree`)."""
    return checkpointing.save_tree(path, variables)


def load_regressor(path=None) -> dict:
    """Variables saved by `save_regressor`; default: the regressor shipped with lipjax."""
    path = pathlib.Path(path if path is not None else shipped_regressor_path()).absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"no landmark regressor checkpoint at {path}")
    variables, _ = checkpointing.restore_tree(path)
    _module_from_params(variables["params"])  # a clear error if they are not a regressor's
    return variables


# Training data and augmentation.


def load_split(data_dir, config_name: str, split: str) -> list[dict]:
    """The utterances of one split of synthetic_lips as {"frames", "landmarks"} arrays."""
    from lipjax.data import datasets  # imported late: it loads TFDS

    source = datasets.open_split(f"synthetic_lips/{config_name}", split, str(data_dir))
    utterances = []
    for index in range(len(source)):
        example = source[index]
        utterances.append(
            {
                "frames": np.asarray(example["frames"], np.uint8),
                "landmarks": np.asarray(example["landmarks"], np.float32),
            }
        )
    return utterances


def _gaussian_blur(images: jax.Array, sigmas: jax.Array, radius: int = 4) -> jax.Array:
    """Separable Gaussian blur of images (N, H, W, C) with one sigma per image (0: none)."""
    taps = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    safe = jnp.maximum(sigmas, 1e-3)[:, None]
    kernels = jnp.exp(-0.5 * (taps[None, :] / safe) ** 2)
    kernels = kernels / kernels.sum(axis=1, keepdims=True)  # (N, 2 * radius + 1)
    size = images.shape[1]
    padded = jnp.pad(images, ((0, 0), (radius, radius), (0, 0), (0, 0)), mode="edge")
    rows = sum(
        kernels[:, k, None, None, None] * padded[:, k : k + size] for k in range(2 * radius + 1)
    )
    padded = jnp.pad(rows, ((0, 0), (0, 0), (radius, radius), (0, 0)), mode="edge")
    return sum(
        kernels[:, k, None, None, None] * padded[:, :, k : k + size] for k in range(2 * radius + 1)
    )


def _warp(image: jax.Array, inverse: jax.Array, offset: jax.Array) -> jax.Array:
    """Bilinear resampling of one image (H, W, C): output pixel at continuous position q
    (pixel centres at j + 0.5) takes the input at inverse @ q + offset; edges repeat."""
    size = image.shape[0]
    centres = jnp.arange(size, dtype=jnp.float32) + 0.5
    grid_y, grid_x = jnp.meshgrid(centres, centres, indexing="ij")
    points = jnp.stack([grid_x, grid_y], axis=-1) @ inverse.T + offset
    rows, cols = points[..., 1] - 0.5, points[..., 0] - 0.5  # to array indices

    def channel(values):
        return jax.scipy.ndimage.map_coordinates(values, [rows, cols], order=1, mode="nearest")

    return jax.vmap(channel, in_axes=2, out_axes=2)(image)


def augment(key: jax.Array, frames: jax.Array, landmarks: jax.Array):
    """Random geometric and photometric changes of uint8 crops (N, 64, 64, 3) and their
    landmarks (N, P, 2), consistent with each other. Returns ([-1, 1] crops, landmarks)."""
    count = frames.shape[0]
    keys = jax.random.split(key, 11)
    images = frames.astype(jnp.float32) / 127.5 - 1.0

    # Geometry: p' = c + s R (p - c) + t about the crop centre c.
    scale = jnp.exp(jax.random.uniform(keys[0], (count,), minval=-0.1, maxval=0.1))
    angle = jax.random.uniform(keys[1], (count,), minval=-1.0, maxval=1.0) * math.radians(6)
    shift = jax.random.uniform(keys[2], (count, 2), minval=-3.0, maxval=3.0)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
    forward = scale[:, None, None] * rotation
    centre = jnp.full((2,), _CENTRE, jnp.float32)
    new_landmarks = centre + jnp.einsum("nij,npj->npi", forward, landmarks - centre)
    new_landmarks = new_landmarks + shift[:, None, :]
    inverse = jnp.swapaxes(rotation, 1, 2) / scale[:, None, None]
    offset = centre - jnp.einsum("nij,nj->ni", inverse, centre + shift)
    images = jax.vmap(_warp)(images, inverse, offset)

    # Blur, half of the time (generated frames are softer than the ground truth).
    sigma = jax.random.uniform(keys[3], (count,), minval=0.3, maxval=1.6)
    sigma = jnp.where(jax.random.bernoulli(keys[4], 0.5, (count,)), sigma, 0.0)
    images = _gaussian_blur(images, sigma)

    # Colour (unseen speakers differ most in skin and lip colour): saturation, contrast,
    # brightness, per-channel gain; then pixel noise.
    saturation = jax.random.uniform(keys[5], (count, 1, 1, 1), minval=0.6, maxval=1.4)
    grey = images.mean(axis=-1, keepdims=True)
    images = grey + saturation * (images - grey)
    contrast = jax.random.uniform(keys[6], (count, 1, 1, 1), minval=0.7, maxval=1.3)
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    images = mean + contrast * (images - mean)
    gain = jax.random.uniform(keys[7], (count, 1, 1, 3), minval=0.8, maxval=1.2)
    brightness = jax.random.uniform(keys[8], (count, 1, 1, 1), minval=-0.25, maxval=0.25)
    images = (images + 1.0) * gain - 1.0 + brightness
    noise_std = jax.random.uniform(keys[9], (count, 1, 1, 1), maxval=0.04)
    images = images + noise_std * jax.random.normal(keys[10], images.shape)
    return jnp.clip(images, -1.0, 1.0), new_landmarks


def _make_train_step(module: LipLandmarkRegressor, optimizer: optax.GradientTransformation):
    @jax.jit
    def train_step(params, opt_state, key, frames, landmarks):
        images, targets = augment(key, frames, landmarks)
        target_offsets = (targets - _CENTRE) / _UNIT

        def loss_fn(params):
            offsets = module.apply({"params": params}, images)
            # L1 in units of 32 px: the mean absolute coordinate error in pixels / 32.
            return jnp.mean(jnp.abs(offsets - target_offsets))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss * _UNIT

    return train_step


# Evaluation.


def _clips(utterance_array: np.ndarray, length: int = CLIP_LENGTH) -> np.ndarray:
    """Non-overlapping clips (K, length, ...) from the start of one utterance."""
    count = utterance_array.shape[0] // length
    return utterance_array[: count * length].reshape(count, length, *utterance_array.shape[1:])


def evaluate(variables, utterances: list[dict], blur_sigma: float = 0.0) -> dict:
    """Errors of the regressor on utterances (ground-truth frames, optionally blurred).

    per_point_error_px: mean distance of predicted to true landmarks over points and frames.
    lmd_px: LMD (paper Eq. 5, mean calibrated) of predicted vs true landmarks per clip of 16
    frames, averaged over clips. static_*: the "static" baseline (the utterance's first
    frame repeated) scored by LMD against the video, once with true landmarks and once
    with predicted ones; the two should agree if the regressor can judge generators.
    """
    all_frames = np.concatenate([u["frames"] for u in utterances])
    if blur_sigma > 0:
        sigmas = jnp.full((all_frames.shape[0],), blur_sigma)
        all_frames = np.asarray(_gaussian_blur(_to_network_range(all_frames), sigmas))
    all_predicted = predict_landmarks(variables, all_frames).astype(np.float64)
    ends = np.cumsum([len(u["frames"]) for u in utterances])
    point_errors, lmds, static_true, static_pred = [], [], [], []
    for utterance, predicted in zip(utterances, np.split(all_predicted, ends[:-1]), strict=True):
        true = utterance["landmarks"].astype(np.float64)
        point_errors.append(np.linalg.norm(predicted - true, axis=-1).reshape(-1))
        true_clips, predicted_clips = _clips(true), _clips(predicted)
        if len(true_clips) == 0:
            continue
        lmds.append(metrics.landmark_distance(true_clips, predicted_clips))
        static_true.append(
            metrics.landmark_distance(true_clips, np.broadcast_to(true[0], true_clips.shape))
        )
        static_pred.append(
            metrics.landmark_distance(
                predicted_clips, np.broadcast_to(predicted[0], predicted_clips.shape)
            )
        )
    point_errors = np.concatenate(point_errors)
    lmds, static_true, static_pred = map(np.concatenate, (lmds, static_true, static_pred))
    return {
        "num_utterances": len(utterances),
        "num_frames": int(point_errors.size // NUM_LANDMARKS),
        "num_clips": int(lmds.size),
        "blur_sigma": blur_sigma,
        "per_point_error_px": float(point_errors.mean()),
        "per_point_error_p95_px": float(np.percentile(point_errors, 95)),
        "lmd_px": float(lmds.mean()),
        "static_lmd_true_landmarks_px": float(static_true.mean()),
        "static_lmd_predicted_landmarks_px": float(static_pred.mean()),
        "static_lmd_mean_abs_difference_px": float(np.abs(static_true - static_pred).mean()),
        "static_lmd_correlation": float(np.corrcoef(static_true, static_pred)[0, 1])
        if lmds.size > 1
        else float("nan"),
    }


# Training.


def train_regressor(
    data_dir,
    config_name: str = "small",
    steps: int = 3000,
    batch_size: int = 64,
    seed: int = 0,
    workdir=None,
    learning_rate: float = 2e-3,
    module: LipLandmarkRegressor | None = None,
    progress: bool = True,
) -> tuple[dict, dict]:
    """Train the regressor on the train split of synthetic_lips/`config_name` in `data_dir`
    and evaluate it on validation and test (unseen speakers). Saves the variables to
    workdir/landmark_regressor and the report to workdir/landmark_regressor_report.json
    when `workdir` is given. Returns (variables, report)."""
    module = module or LipLandmarkRegressor()
    train = load_split(data_dir, config_name, "train")
    frames = np.concatenate([u["frames"] for u in train])
    landmarks = np.concatenate([u["landmarks"] for u in train])

    variables = init_regressor(seed, module)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(200, steps // 10 + 1), steps, end_value=learning_rate * 1e-2
    )
    optimizer = optax.adam(schedule)
    params = variables["params"]
    opt_state = optimizer.init(params)
    train_step = _make_train_step(module, optimizer)

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed + 1)
    losses = []
    start = time.perf_counter()
    bar = tqdm.trange(steps, desc="landmark regressor", disable=not progress)
    for step in bar:
        # Random frames across all utterances (uniform over frames).
        picks = rng.integers(0, frames.shape[0], size=batch_size)
        key, step_key = jax.random.split(key)
        params, opt_state, loss = train_step(
            params, opt_state, step_key, frames[picks], landmarks[picks]
        )
        if step % 50 == 0 or step == steps - 1:
            losses.append((step, float(loss)))
            bar.set_postfix(l1_px=f"{losses[-1][1]:.3f}")
    jax.block_until_ready(params)
    train_seconds = time.perf_counter() - start
    variables = {"params": params}

    report = {
        "config": config_name,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "train_frames": int(frames.shape[0]),
        "train_utterances": len(train),
        "parameters": count_parameters(variables),
        "architecture": {"features": list(module.features), "hidden": module.hidden},
        "train_seconds": train_seconds,
        "train_l1_px": losses,  # (step, mean absolute coordinate error in px, augmented)
    }
    for split in ("validation", "test"):
        utterances = load_split(data_dir, config_name, split)
        report[split] = evaluate(variables, utterances)
        report[f"{split}_blur_1.0"] = evaluate(variables, utterances, blur_sigma=1.0)
    if workdir is not None:
        workdir = pathlib.Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        save_regressor(variables, workdir / CHECKPOINT_NAME)
        (workdir / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return variables, report
