"""The lip-sync expert: training, and the SyncNet-style scores LSE-D, LSE-C and offset.

The expert (lipjax.models.sync_expert, after Chung & Zisserman 2016) embeds 5 frames of
lips and the matching 20 log-mel frames. Scoring a clip follows SyncNet's evaluation as
later papers report it (e.g. Prajwal et al., "A Lip Sync Expert Is All You Need", 2020):
for each audio offset o in -K..K the distances between the lips at frame t and the audio at
frame t + o are averaged over t; then

  LSE-D  = the smallest mean distance (lower: better in sync),
  LSE-C  = median over offsets minus that smallest distance (higher: more confident),
  offset = the o of the smallest distance: frames by which the lips LEAD the audio.

Our embeddings are unit vectors, so distances lie in [0, 2]: the values are LSE-style, not
comparable with numbers from the public SyncNet model.

Training (contrastive, InfoNCE with off-sync negatives): on synthetic_lips the lips lead
the audio by a known per-utterance delay d (`av_delay_frames`), so each positive pairs lips
at t with audio at t + d; the negatives are the same utterance's audio at t + d + s for
s = +-1..+-K (off-sync by s frames) and every audio window of the other batch items. The
expert thus learns true synchrony, and on held-out videos its offset recovers d (tested).
Corpora whose delay is unknown (-1) are trained as if in sync.

    python -m lipjax.cli.train_sync_expert --dataset=synthetic_lips/small --data_dir=DIR \\
        --workdir=OUT [--steps=2500]
    python -m lipjax.cli.score_lip_sync --dataset=synthetic_lips/small --data_dir=DIR \\
        --split=test [--expert=OUT]

A trained expert ships in lipjax/assets/sync_expert (`load_expert()` loads it).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import pathlib
import time
from collections.abc import Sequence

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.ndimage
import tqdm

from lipjax import checkpointing
from lipjax.data import audio as audio_lib
from lipjax.data import datasets, pipeline
from lipjax.models.sync_expert import (
    LIP_SIZE,
    MELS_PER_FRAME,
    NUM_MEL_BANDS,
    WINDOW_FRAMES,
    WINDOW_MELS,
    SyncExpert,
    audio_windows,
    grey_lips,
    lip_windows,
)

MAX_OFFSET = 7  # offsets -7..7 frames are searched (the synthetic delays are 0..4)
TRAIN_SHIFTS = 4  # off-sync negatives at +-1..4 frames from the in-sync audio
TEMPERATURE = 0.1  # of the InfoNCE logits (cosine similarities / temperature)
EXPERT_DIR = "expert"  # lipjax.checkpointing.save_tree
LEGACY_EXPERT_FILE = "sync_expert.msgpack"  # how experts were saved before
REPORT_FILE = "sync_expert_report.json"


def shipped_expert_path() -> pathlib.Path:
    """The trained expert that ships with lipjax."""
    return pathlib.Path(str(importlib.resources.files("lipjax") / "assets" / "sync_expert"))


# ---------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class Utterance:
    """What the expert sees of one utterance."""

    lips: np.ndarray  # (T, 32, 32) float32 grey in [-1, 1]
    audio: np.ndarray  # (4 T_a, 128) float32 normalised log-mel
    delay: int  # frames by which the lips lead the audio; -1: unknown
    speaker: str

    @property
    def num_audio_frames(self) -> int:
        return len(self.audio) // MELS_PER_FRAME


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def utterance_from_example(example) -> Utterance:
    """An Utterance from a decoded example of the lipjax feature set (lipjax.data.features)."""
    frames = pipeline.normalize_video(np.asarray(example["frames"]))
    return Utterance(
        lips=np.asarray(grey_lips(frames), np.float32),
        audio=pipeline.normalize_log_mel(np.asarray(example["log_mel"]))[..., 0],
        delay=int(example["av_delay_frames"]),
        speaker=_text(example["speaker"]),
    )


def load_utterances(
    dataset: str, split: str, data_dir: str | None = None, limit: int | None = None
) -> list[Utterance]:
    """The utterances of one split of a built lipjax dataset (e.g. "synthetic_lips/small")."""
    source = datasets.open_split(dataset, split, data_dir)
    count = len(source) if limit is None else min(limit, len(source))
    return [utterance_from_example(source[index]) for index in range(count)]


def shift_audio(log_mel: np.ndarray, frames: int) -> np.ndarray:
    """The log-mel (4 T, 128) delayed by `frames` video frames (advanced if negative), keeping
    its length: a delay pads the start with the utterance's quietest mel frame, an advance
    drops the first frames and pads the end. Lips that led the audio by d then lead by
    d + frames."""
    log_mel = np.asarray(log_mel)
    mels = MELS_PER_FRAME * abs(frames)
    if frames == 0:
        return log_mel.copy()
    if mels >= len(log_mel):
        raise ValueError(f"frames: a shift of {frames} frames leaves none of the audio")
    floor = log_mel[np.argmin(log_mel.mean(axis=-1))]
    pad = np.repeat(floor[None], mels, axis=0)
    if frames > 0:
        return np.concatenate([pad, log_mel[:-mels]])
    return np.concatenate([log_mel[mels:], pad])


def audio_around(log_mel: np.ndarray, start: int, num_frames: int, context: int = MAX_OFFSET):
    """The log-mel (4 T, 128) of video frames [start - context, start + num_frames + context)
    of an utterance, padded with its quietest mel frame beyond its ends: the audio of a
    clip with `context` frames either side, for scoring offsets up to +-context."""
    return audio_lib.log_mel_window(log_mel, start - context, num_frames + 2 * context)


def _valid_starts(utterance: Utterance) -> np.ndarray:
    """Lip-window starts t whose in-sync audio window (at t + delay) lies in the audio."""
    delay = max(utterance.delay, 0)
    last = min(len(utterance.lips), utterance.num_audio_frames - delay) - WINDOW_FRAMES
    return np.arange(0, last + 1) if last >= 0 else np.zeros(0, np.int64)


def sample_batch(
    utterances: Sequence[Utterance],
    rng: np.random.Generator,
    batch_size: int,
    max_shift: int = TRAIN_SHIFTS,
    augment: bool = True,
) -> dict[str, np.ndarray]:
    """A training batch: lips (B, 32, 32, 5); audio (B, S, 20, 128, 1) at shifts -K..K from
    the in-sync window (shift K in the middle is the positive); valid (B, S) marks shifted
    windows that lie inside the audio."""
    shifts = np.arange(-max_shift, max_shift + 1)
    lips = np.zeros((batch_size, LIP_SIZE, LIP_SIZE, WINDOW_FRAMES), np.float32)
    audio = np.zeros((batch_size, len(shifts), WINDOW_MELS, NUM_MEL_BANDS, 1), np.float32)
    valid = np.zeros((batch_size, len(shifts)), bool)
    usable = [u for u in utterances if len(_valid_starts(u))]
    if not usable:
        raise ValueError("utterances: none is long enough for one 5-frame window in sync")
    for row in range(batch_size):
        utterance = usable[rng.integers(len(usable))]
        start = int(rng.choice(_valid_starts(utterance)))
        lips[row] = np.moveaxis(utterance.lips[start : start + WINDOW_FRAMES], 0, -1)
        for column, shift in enumerate(shifts):
            audio_start = start + max(utterance.delay, 0) + shift
            if 0 <= audio_start <= utterance.num_audio_frames - WINDOW_FRAMES:
                mel = MELS_PER_FRAME * audio_start
                audio[row, column, ..., 0] = utterance.audio[mel : mel + WINDOW_MELS]
                valid[row, column] = True
    if augment:
        lips = augment_lips(lips, rng)
    return {"lips": lips, "audio": audio, "valid": valid}


def augment_lips(lips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, brightness and (for half the windows) Gaussian blur, so that the expert
    also judges the blurrier frames of a generator."""
    count = len(lips)
    contrast = rng.uniform(0.8, 1.2, (count, 1, 1, 1))
    brightness = rng.uniform(-0.15, 0.15, (count, 1, 1, 1))
    out = np.clip(lips * contrast + brightness, -1.0, 1.0)
    for row in np.flatnonzero(rng.random(count) < 0.5):
        sigma = rng.uniform(0.3, 1.0)
        out[row] = scipy.ndimage.gaussian_filter(out[row], (sigma, sigma, 0), mode="nearest")
    return out.astype(np.float32)


# ---------------------------------------------------------------- training


def init_expert(seed: int = 0, module: SyncExpert | None = None) -> dict:
    """Fresh variables {"params": ...}."""
    module = module or SyncExpert()
    lips = jnp.zeros((1, LIP_SIZE, LIP_SIZE, WINDOW_FRAMES))
    audio = jnp.zeros((1, WINDOW_MELS, NUM_MEL_BANDS, 1))
    return dict(module.init(jax.random.key(seed), lips, audio))


def contrastive_loss(module: SyncExpert, params, batch) -> tuple[jax.Array, dict]:
    """InfoNCE of each lip window against every audio window of the batch, at every shift;
    the target is its own in-sync window. Also returns the share of lip windows whose own
    in-sync audio is the most similar of their shifted windows (offset accuracy)."""
    lips, audio, valid = batch["lips"], batch["audio"], batch["valid"]
    batch_size, num_shifts = valid.shape
    lip_embeddings = module.apply({"params": params}, lips, method=SyncExpert.embed_lips)
    flat_audio = audio.reshape(batch_size * num_shifts, *audio.shape[2:])
    audio_embeddings = module.apply({"params": params}, flat_audio, method=SyncExpert.embed_audio)
    audio_embeddings = audio_embeddings.reshape(batch_size, num_shifts, -1)
    logits = jnp.einsum("id,jsd->ijs", lip_embeddings, audio_embeddings) / TEMPERATURE
    logits = jnp.where(valid[None], logits, -1e9)
    centre = num_shifts // 2
    targets = jnp.arange(batch_size) * num_shifts + centre
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits.reshape(batch_size, -1), targets
    ).mean()
    own = logits[jnp.arange(batch_size), jnp.arange(batch_size)]  # (B, S)
    accuracy = jnp.mean(jnp.argmax(own, axis=-1) == centre)
    return loss, {"loss": loss, "shift_accuracy": accuracy}


def _make_train_step(module: SyncExpert, optimizer: optax.GradientTransformation):
    @jax.jit
    def train_step(params, opt_state, batch):
        grads, metrics = jax.grad(lambda p: contrastive_loss(module, p, batch), has_aux=True)(
            params
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    return train_step


def train_expert(
    train: Sequence[Utterance],
    validation: Sequence[Utterance] = (),
    steps: int = 2500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    max_shift: int = TRAIN_SHIFTS,
    seed: int = 0,
    module: SyncExpert | None = None,
    progress: bool = True,
    eval_every: int = 500,
) -> tuple[dict, dict]:
    """Trains an expert on `train`; returns (variables, report). The report holds the loss
    curve and, every `eval_every` steps, the offset accuracy on `validation`."""
    module = module or SyncExpert()
    params = init_expert(seed, module)["params"]
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(200, steps // 10 + 1), steps, end_value=learning_rate * 0.02
    )
    optimizer = optax.adam(schedule)
    opt_state = optimizer.init(params)
    train_step = _make_train_step(module, optimizer)
    rng = np.random.default_rng(seed)
    history, evaluations = [], []
    start = time.perf_counter()
    bar = tqdm.trange(steps, desc="sync expert", disable=not progress)
    for step in bar:
        batch = sample_batch(train, rng, batch_size, max_shift)
        params, opt_state, metrics = train_step(params, opt_state, batch)
        if step % 50 == 0 or step == steps - 1:
            values = {k: float(v) for k, v in metrics.items()}
            history.append({"step": step, **values})
            bar.set_postfix(loss=f"{values['loss']:.3f}", acc=f"{values['shift_accuracy']:.2f}")
        if validation and ((step + 1) % eval_every == 0 or step == steps - 1):
            found = offset_study(module, {"params": params}, validation)
            evaluations.append({"step": step + 1, **found["summary"]})
    variables = {"params": jax.device_get(params)}
    report = {
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_shift": max_shift,
        "temperature": TEMPERATURE,
        "seed": seed,
        "train_utterances": len(train),
        "parameters": int(sum(np.size(x) for x in jax.tree.leaves(variables))),
        "architecture": architecture_of(module),
        "train_seconds": time.perf_counter() - start,
        "history": history,
        "validation": evaluations,
    }
    return variables, report


# ---------------------------------------------------------------- saving


def architecture_of(module: SyncExpert) -> dict:
    return {
        "lip_features": list(module.lip_features),
        "speech_features": list(module.speech_features),
        "embedding": module.embedding,
    }


def save_expert(variables, directory, module: SyncExpert, report: dict | None = None):
    """Writes DIRECTORY/expert (float32 parameters, the architecture as metadata;
    `lipjax.checkpointing.save_tree`) and the report as JSON beside it."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = jax.tree.map(lambda x: np.asarray(x, np.float32), variables["params"])
    path = checkpointing.save_tree(
        directory / EXPERT_DIR, {"params": params}, {"architecture": architecture_of(module)}
    )
    if report is not None:
        checkpointing.write_json(directory / REPORT_FILE, report)
    return path


def load_expert(path=None) -> tuple[SyncExpert, dict]:
    """(module, variables) saved by `save_expert` in directory `path`; default: the expert
    shipped with lipjax. Experts saved before lipjax kept every network in one format
    (DIRECTORY/sync_expert.msgpack) still load."""
    directory = pathlib.Path(path) if path is not None else shipped_expert_path()
    if (directory / EXPERT_DIR).is_dir():
        variables, metadata = checkpointing.restore_tree(directory / EXPERT_DIR)
        architecture = metadata["architecture"]
    elif (directory / LEGACY_EXPERT_FILE).is_file() or directory.suffix == ".msgpack":
        legacy = directory if directory.suffix == ".msgpack" else directory / LEGACY_EXPERT_FILE
        payload = flax.serialization.msgpack_restore(legacy.read_bytes())
        architecture = json.loads(payload["architecture"])
        variables = {"params": jax.tree.map(jnp.asarray, payload["params"])}
    else:
        raise FileNotFoundError(f"sync expert: no {EXPERT_DIR}/ in {directory}")
    module = SyncExpert(
        lip_features=tuple(architecture["lip_features"]),
        speech_features=tuple(architecture["speech_features"]),
        embedding=int(architecture["embedding"]),
    )
    return module, variables


# ---------------------------------------------------------------- scoring


@functools.lru_cache(maxsize=8)
def _embedders(module: SyncExpert):
    @jax.jit
    def lips(variables, grey):  # (N, 5 + k, 32, 32) -> (N, k + 1, D)
        windows = lip_windows(grey)
        flat = windows.reshape(-1, *windows.shape[2:])
        embedded = module.apply(variables, flat, method=SyncExpert.embed_lips)
        return embedded.reshape(*windows.shape[:2], -1)

    @jax.jit
    def audio(variables, log_mel):  # (N, 4 (5 + k), 128) -> (N, k + 1, D)
        windows = audio_windows(log_mel)
        flat = windows.reshape(-1, *windows.shape[2:])
        embedded = module.apply(variables, flat, method=SyncExpert.embed_audio)
        return embedded.reshape(*windows.shape[:2], -1)

    return lips, audio


def _padded(array: np.ndarray, axis: int, multiple: int) -> np.ndarray:
    """`array` with its `axis` padded (by repeating the last entry) to a multiple of
    `multiple`, or to a power of two for the batch axis: few shapes, few compilations."""
    count = array.shape[axis]
    power_of_two = 1 << max(count - 1, 0).bit_length()
    size = -(-count // multiple) * multiple if multiple else power_of_two
    if size == count:
        return array
    last = np.take(array, [-1], axis=axis)
    return np.concatenate([array, np.repeat(last, size - count, axis=axis)], axis=axis)


def embed(module: SyncExpert, variables, grey, log_mel) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every 5-frame window: grey lips (N, T, 32, 32) -> (N, T - 4, D) and
    normalised log-mel (N, 4 T_a, 128) -> (N, T_a - 4, D)."""
    embed_lips, embed_audio = _embedders(module)
    grey, log_mel = np.asarray(grey, np.float32), np.asarray(log_mel, np.float32)
    count, num_frames = grey.shape[:2]
    num_audio_frames = log_mel.shape[1] // MELS_PER_FRAME
    log_mel = log_mel[:, : MELS_PER_FRAME * num_audio_frames]
    grey = _padded(_padded(grey, 0, 0), 1, 16)
    log_mel = _padded(_padded(log_mel, 0, 0), 1, 16 * MELS_PER_FRAME)
    lips = np.asarray(embed_lips(variables, grey))[:count, : num_frames - WINDOW_FRAMES + 1]
    audio = np.asarray(embed_audio(variables, log_mel))
    return lips, audio[:count, : num_audio_frames - WINDOW_FRAMES + 1]


def offset_distances(
    lip_embeddings: np.ndarray,
    audio_embeddings: np.ndarray,
    offsets: Sequence[int],
    audio_start: int = 0,
) -> np.ndarray:
    """Mean distance between lips at t and audio at t + o, over the t where both exist, for
    each offset o: (..., O); NaN where an offset has no pair. Lip window i starts at frame
    i; audio window j at frame audio_start + j (e.g. -K for K frames of audio context)."""
    lip_embeddings, audio_embeddings = np.asarray(lip_embeddings), np.asarray(audio_embeddings)
    similarity = np.einsum("...id,...jd->...ij", lip_embeddings, audio_embeddings)
    distance = np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0))  # unit vectors
    num_lips, num_audio = distance.shape[-2:]
    curve = np.full((*distance.shape[:-2], len(offsets)), np.nan)
    for index, offset in enumerate(offsets):
        lips = np.arange(num_lips)
        audio = lips + offset - audio_start
        keep = (audio >= 0) & (audio < num_audio)
        if keep.any():
            curve[..., index] = distance[..., lips[keep], audio[keep]].mean(axis=-1)
    return curve


def scores_from_curve(curve: np.ndarray, offsets: Sequence[int]) -> dict[str, np.ndarray]:
    """LSE-D (smallest mean distance), LSE-C (median minus smallest) and the offset of the
    smallest, from distance curves (..., O)."""
    curve = np.asarray(curve, np.float64)
    if np.isnan(curve).all(axis=-1).any():
        raise ValueError("curve: some clip has no offset with a lip/audio pair")
    best = np.nanargmin(curve, axis=-1)
    lse_d = np.nanmin(curve, axis=-1)
    return {
        "lse_d": lse_d,
        "lse_c": np.nanmedian(curve, axis=-1) - lse_d,
        "offset": np.asarray(offsets)[best],
    }


class SyncScorer:
    """LSE-D, LSE-C and offset of lip clips against their audio, with a loaded expert."""

    def __init__(self, path=None, max_offset: int = MAX_OFFSET):
        self.module, self.variables = load_expert(path)
        self.offsets = np.arange(-max_offset, max_offset + 1)

    def __call__(self, clips, log_mel, audio_start: int = 0) -> dict[str, np.ndarray]:
        """clips (B, T, 64, 64, 3) float in [-1, 1] or uint8; log_mel (B, 4 T_a, 128[, 1])
        normalised (the model's audio input), its first frame at video frame `audio_start`
        of the clip. Returns arrays (B,): lse_d, lse_c, offset."""
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[-3:] != (2 * LIP_SIZE, 2 * LIP_SIZE, 3):
            raise ValueError(f"clips: expected (B, T, 64, 64, 3), got {clips.shape}")
        if clips.dtype == np.uint8:
            clips = pipeline.normalize_video(clips)
        log_mel = np.asarray(log_mel, np.float32)
        if log_mel.ndim == 4:
            log_mel = log_mel[..., 0]
        if log_mel.ndim != 3 or log_mel.shape[-1] != NUM_MEL_BANDS or len(log_mel) != len(clips):
            raise ValueError(
                f"log_mel: expected (B, 4 T, 128) for {len(clips)} clips, got {log_mel.shape}"
            )
        if clips.shape[1] < WINDOW_FRAMES or log_mel.shape[1] < WINDOW_MELS:
            raise ValueError(f"clips and audio need at least {WINDOW_FRAMES} frames each")
        grey = np.asarray(grey_lips(clips))
        lips, audio = embed(self.module, self.variables, grey, log_mel)
        curve = offset_distances(lips, audio, self.offsets, audio_start)
        return scores_from_curve(curve, self.offsets)

    def utterance(self, utterance: Utterance, audio_shift: int = 0) -> dict:
        """Scores of a whole utterance (its audio delayed by `audio_shift` frames first)."""
        audio = shift_audio(utterance.audio, audio_shift)
        lips, audio = embed(self.module, self.variables, utterance.lips[None], audio[None])
        curve = offset_distances(lips[0], audio[0], self.offsets)
        scores = {k: v.item() for k, v in scores_from_curve(curve, self.offsets).items()}
        return {**scores, "curve": curve}


def offset_study(
    module: SyncExpert,
    variables,
    utterances: Sequence[Utterance],
    injected_shifts: Sequence[int] = (0,),
    max_offset: int = MAX_OFFSET,
) -> dict:
    """How often the expert's offset on whole utterances equals the known one (the corpus
    delay plus an injected audio delay), over utterances x injected shifts."""
    scorer = SyncScorer.__new__(SyncScorer)
    scorer.module, scorer.variables = module, variables
    scorer.offsets = np.arange(-max_offset, max_offset + 1)
    found, expected = [], []
    for utterance in utterances:
        if utterance.delay < 0:
            raise ValueError("utterances: the offset study needs known delays (not -1)")
        for shift in injected_shifts:
            found.append(scorer.utterance(utterance, shift)["offset"])
            expected.append(utterance.delay + shift)
    found, expected = np.array(found), np.array(expected)
    return {
        "found": found,
        "expected": expected,
        "summary": {
            "utterances": len(utterances),
            "injected_shifts": list(injected_shifts),
            "offset_accuracy": float(np.mean(found == expected)),
            "offset_within_one_frame": float(np.mean(np.abs(found - expected) <= 1)),
        },
    }


def baseline_scores(scorer: SyncScorer, utterances: Sequence[Utterance], shift: int = 10) -> dict:
    """Mean LSE-D / LSE-C / share of offsets equal to the delay on whole utterances for the
    real video, a static one (first frame repeated), and the real video with its audio
    delayed by `shift` frames (outside the searched offsets when shift > K - 4)."""
    rows: dict[str, list] = {"real": [], "static": [], f"audio_shifted_{shift}": []}
    for utterance in utterances:
        static = dataclasses.replace(
            utterance, lips=np.repeat(utterance.lips[:1], len(utterance.lips), axis=0)
        )
        rows["real"].append(scorer.utterance(utterance))
        rows["static"].append(scorer.utterance(static))
        rows[f"audio_shifted_{shift}"].append(scorer.utterance(utterance, shift))
    return {
        name: {
            "lse_d": float(np.mean([r["lse_d"] for r in results])),
            "lse_c": float(np.mean([r["lse_c"] for r in results])),
            "offset_equals_delay": float(
                np.mean([r["offset"] == u.delay for r, u in zip(results, utterances, strict=True)])
            ),
        }
        for name, results in rows.items()
    }


# ---------------------------------------------------------------- whole runs


def train_on_dataset(
    dataset: str,
    data_dir: str | None,
    workdir: str | pathlib.Path,
    *,
    steps: int = 2500,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Trains an expert on the train split of a built dataset, checks it on validation and
    on the offsets of the test split, saves it to `workdir`; returns its report."""
    train = load_utterances(dataset, "train", data_dir)
    validation = load_utterances(dataset, "validation", data_dir)
    module = SyncExpert()
    variables, report = train_expert(
        train,
        validation,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        module=module,
    )
    report["dataset"] = dataset
    test = load_utterances(dataset, "test", data_dir)
    report["test"] = offset_study(module, variables, test, injected_shifts=(-2, 0, 2))["summary"]
    save_expert(variables, workdir, module, report)
    return report


def score_dataset(
    dataset: str, split: str, data_dir: str | None = None, expert: str | None = None
) -> dict:
    """LSE-D / LSE-C of a split's real, static and audio-shifted videos under an expert
    (None: the shipped one), and the offset study where the delays are known."""
    utterances = load_utterances(dataset, split, data_dir)
    scorer = SyncScorer(expert)
    result = {"dataset": dataset, "split": split}
    if all(u.delay >= 0 for u in utterances):
        study = offset_study(
            scorer.module, scorer.variables, utterances, injected_shifts=(-2, -1, 0, 1, 2)
        )
        result["offset_study"] = study["summary"]
    result["scores"] = baseline_scores(scorer, utterances)
    return result
