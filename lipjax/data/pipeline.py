"""Input pipeline: 16-frame windows of lip video with their log-mel audio, on grain.

One training sample (docs/design.md, "Samples") is a window of `window` = 16 video frames
starting at frame s, taken every `hop` = 8 frames over each utterance, with the matching 64 log-mel
frames log_mel[4s : 4s + 64], the mouth landmarks of the 16 frames and an identity image
p_r, a frame of the same utterance. Frames left after the last full window (fewer than
`hop`) are not used; utterances shorter than one window are skipped and counted.

Why grain's Dataset API (`grain.MapDataset` -> `.to_iter_dataset()` -> `IterDataset`)
rather than `grain.DataLoader`: it is the API grain recommends for new pipelines; a
window is a pure function of its position (shuffle, repeat and the identity choice are
index arithmetic), so the iterator state is one small JSON dict and a resumed run gives
exactly the next batch; the same graph serves the infinite training stream and the
padded, one-pass evaluation, and multiprocessing is one optional `.mp_prefetch()`.

Data: a TFDS builder stored as array_record, read by random access with
`builder.as_data_source(split)` (no TensorFlow). Each JAX process reads its own shard of
utterances, `tfds.split_for_jax_process(split)`. The per-utterance frame counts needed
to lay out the windows are read once and cached as an .npz in `cache_dir`.

Outputs, per example (a batch adds a leading axis of global_batch // process_count):
  video (16, 64, 64, 3) float32 in [-1, 1]; identity (64, 64, 3) float32 in [-1, 1];
  audio (64, 128, 1) float32, (dB - mean) / std with the model's `log_mel_stats` (the
    training corpus's, see `dataset_log_mel_stats`);
  landmarks (16, 20, 2) float32 mouth points in crop pixels;
  utterance_index, start_frame, speaker_id: int32 (see `speaker_id`).
Mismatched audio for the discriminator is made by the train step, not here.

Use and resume (the iterator's position is saved next to the train state):

    iterator = create_train_iterator("synthetic_lips/small", "train", data_dir,
                                     global_batch_size=24, seed=0, cache_dir=workdir)
    arrays = to_global_arrays(next(iterator), make_data_sharding(mesh))
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=checkpoint_save_args(iterator)))
    # after a restart: build the iterator with the same arguments, then
    manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=checkpoint_restore_args(iterator)))   # iterator now yields the next batch

The saved position is that of the next batch `next()` will return (prefetched batches
do not count), taken when `manager.save` is called. Without orbax, `iterator.get_state()`
is a JSON-serialisable dict and `iterator.set_state(saved)` restores it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import re
import zlib
from collections.abc import Sequence
from typing import Any

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from lipjax.data import audio, datasets

logger = logging.getLogger(__name__)

WINDOW_FRAMES = 16
HOP_FRAMES = 8
MELS_PER_FRAME = audio.MELS_PER_VIDEO_FRAME  # 4 log-mel frames per video frame
# The fixed log-mel normalisation of models trained before per-corpus statistics and of the
# lip-sync expert (defined in lipjax.data.audio, which loads no dataset libraries).
LOG_MEL_MEAN = audio.LOG_MEL_MEAN
LOG_MEL_STD = audio.LOG_MEL_STD

DEFAULT_DATASET = "synthetic_lips/small"
DATA_AXIS = "data"
_INDEX_FORMAT = 1  # bump when the cached index layout changes


# ---------------------------------------------------------------- normalisation


def normalize_video(frames: np.ndarray) -> np.ndarray:
    """uint8 frames -> float32 in [-1, 1] (0 -> -1, 255 -> 1)."""
    return np.asarray(frames, np.float32) / np.float32(127.5) - np.float32(1.0)


def normalize_log_mel(
    log_mel_db: np.ndarray, stats: audio.LogMelStats = audio.FIXED_LOG_MEL_STATS
) -> np.ndarray:
    """Log-mel in dB, (T, 128) -> the model's audio input (T, 128, 1), float32, normalised
    with `stats` (a model's: `audio.model_log_mel_stats(config.model)`)."""
    return stats.normalize(log_mel_db)[..., None]


def dataset_log_mel_stats(
    dataset: str, data_dir: str | None = None, cache_dir: str | epath.PathLike | None = None
) -> audio.LogMelStats:
    """The log-mel statistics of `dataset`'s train split, stored with it when it was built.

    A dataset built before they were stored (or with Beam) has them computed here from its
    train split, once: the result is kept in `cache_dir` (a run's data_index folder) when
    given. A dataset without a train split gets audio.FIXED_LOG_MEL_STATS."""
    builder = datasets.open_builder(dataset, data_dir)
    stored = (builder.info.metadata or {}).get(audio.LOG_MEL_STATS_METADATA_KEY)
    if stored:
        return audio.LogMelStats(float(stored["mean"]), float(stored["std"]))
    if "train" not in builder.info.splits:
        logger.warning("%s has no train split: fixed log-mel statistics", dataset)
        return audio.FIXED_LOG_MEL_STATS
    cached = None
    if cache_dir is not None:
        name = f"{dataset.replace('/', '_')}_{builder.info.version}_log_mel_stats.json"
        cached = epath.Path(cache_dir) / name
        if cached.exists():
            stored = json.loads(cached.read_text())
            return audio.LogMelStats(float(stored["mean"]), float(stored["std"]))
    logger.warning(
        "%s was built without its log-mel statistics (built before they were stored, or "
        "with Beam): computing them from its train split",
        dataset,
    )
    accumulator = audio.LogMelStatsAccumulator()
    for example in builder.as_data_source(split="train"):
        accumulator.add(example["log_mel"])
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(accumulator.metadata()))
    return accumulator.result()


def speaker_id(name: str | bytes) -> int:
    """A speaker's integer id: CRC-32 of its UTF-8 name, as a non-negative int32.

    It depends on the name only, so it is the same in every process, split and run
    (a shard-local vocabulary would not be); `WindowIndex.speaker_names` maps it back.
    """
    data = name if isinstance(name, bytes) else name.encode()
    return zlib.crc32(data) & 0x7FFFFFFF


# ---------------------------------------------------------------- dataset and index


@dataclasses.dataclass(frozen=True)
class WindowIndex:
    """The windows of one process's shard of a split.

    `utterance_row[i]` is the position of window i's utterance in the shard's data source
    and `start_frame[i]` its first frame; `num_frames[u]` is the usable length of local
    utterance u (frames with landmarks and 4 log-mel frames each). `first_utterance` is
    the shard's offset in the split, so the split-wide index of a local utterance u is
    `first_utterance + u`.
    """

    utterance_row: np.ndarray
    start_frame: np.ndarray
    num_frames: np.ndarray
    speakers: tuple[str, ...]
    first_utterance: int
    num_skipped_utterances: int
    window: int
    hop: int

    @property
    def num_windows(self) -> int:
        return len(self.start_frame)

    @property
    def speaker_names(self) -> dict[int, str]:
        """`speaker_id` -> speaker name, for the speakers of this shard."""
        return {speaker_id(name): name for name in self.speakers}


def inner_window_starts(num_frames: int, window: int = WINDOW_FRAMES, hop: int = HOP_FRAMES):
    """First frames of the windows that lie wholly inside an utterance of `num_frames`
    frames: 0, hop, ... (training and evaluation windows; compare
    `lipjax.inference.generate.covering_window_starts`)."""
    return np.arange(0, num_frames - window + 1, hop, dtype=np.int64)


def _process_shard(
    builder: tfds.core.DatasetBuilder, split: str, process_index: int, process_count: int
) -> tuple[Any, int, int]:
    """(split spec, first utterance, number of utterances) of this process's shard."""
    if split not in builder.info.splits:
        raise ValueError(
            f"{builder.info.full_name} has no split {split!r}; "
            f"it has {sorted(builder.info.splits.keys())}"
        )
    shard = tfds.split_for_jax_process(
        split, process_index=process_index, process_count=process_count
    )
    (instruction,) = shard.to_absolute(builder.info.splits)
    total = builder.info.splits[split].num_examples
    first = instruction.from_ or 0
    end = total if instruction.to is None else instruction.to
    return shard, first, end - first


def _cache_path(
    cache_dir: str | epath.PathLike, builder, split: str, shard: tuple[int, int]
) -> epath.Path:
    info = builder.info
    split_info = info.splits[split]
    fingerprint = json.dumps(
        [
            _INDEX_FORMAT,
            str(epath.Path(builder.data_dir).resolve()),
            split,
            shard,
            list(split_info.shard_lengths),
            int(split_info.num_bytes),
        ]
    )
    digest = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
    config = builder.builder_config.name if builder.builder_config else "default"
    stem = f"{info.name}-{config}-{info.version}-{split}-process{shard[0]}of{shard[1]}-{digest}"
    return epath.Path(cache_dir) / "window_index" / (re.sub(r"[^\w.-]", "_", stem) + ".npz")


def _read_utterance_lengths(source: Sequence) -> tuple[np.ndarray, list[str]]:
    """Usable frame count and speaker of every utterance of a data source (slow: decodes all)."""
    num_frames = np.zeros(len(source), np.int64)
    speakers = []
    for row in range(len(source)):
        example = source[row]
        num_frames[row] = min(
            len(example["frames"]),
            len(example["landmarks"]),
            len(example["log_mel"]) // MELS_PER_FRAME,
        )
        speaker = example["speaker"]
        speakers.append(speaker.decode() if isinstance(speaker, bytes) else str(speaker))
        if (row + 1) % 1000 == 0:
            logger.info("Window index: read %d of %d utterances", row + 1, len(source))
    return num_frames, speakers


def _load_or_build_lengths(source, path: epath.Path | None) -> tuple[np.ndarray, list[str]]:
    if path is not None and path.exists():
        with path.open("rb") as file:
            cached = np.load(io.BytesIO(file.read()))
            if len(cached["num_frames"]) == len(source):
                return cached["num_frames"], [str(s) for s in cached["speakers"]]
        logger.warning("Window index cache %s does not match the data; rebuilding", path)
    num_frames, speakers = _read_utterance_lengths(source)
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, num_frames=num_frames, speakers=np.asarray(speakers, dtype=str))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f"{path.name}.tmp-{jax.process_index()}"
        temporary.write_bytes(buffer.getvalue())
        temporary.rename(path)  # atomic: a concurrent reader never sees half a file
        logger.info("Window index cached in %s", path)
    return num_frames, speakers


# Features of an utterance the windows never read: left undecoded (the 44.1 kHz waveform is
# 4x the bytes of the log-mel it was computed from).
UNUSED_FEATURES = ("waveform",)


def _skip_unused_features(builder: tfds.core.DatasetBuilder) -> dict | None:
    skipped = {
        name: tfds.decode.SkipDecoding()
        for name in UNUSED_FEATURES
        if name in builder.info.features
    }
    return skipped or None


def _open_shard(
    dataset: str,
    split: str,
    data_dir: str | None,
    cache_dir: str | epath.PathLike | None,
    window: int,
    hop: int,
) -> tuple[Sequence, WindowIndex]:
    """This process's data source and window index of `split`."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    builder = datasets.open_builder(dataset, data_dir)
    process = (jax.process_index(), jax.process_count())
    shard, first_utterance, num_utterances = _process_shard(builder, split, *process)
    source = builder.as_data_source(split=shard, decoders=_skip_unused_features(builder))
    assert len(source) == num_utterances, (len(source), num_utterances)
    path = _cache_path(cache_dir, builder, split, process) if cache_dir is not None else None
    num_frames, speakers = _load_or_build_lengths(source, path)

    starts_per_utterance = [inner_window_starts(int(n), window, hop) for n in num_frames]
    utterance_row = np.concatenate(
        [np.full(len(s), u, np.int64) for u, s in enumerate(starts_per_utterance)] + [[]]
    ).astype(np.int64)
    start_frame = np.concatenate([*starts_per_utterance, []]).astype(np.int64)
    skipped = int(np.sum(num_frames < window))
    if skipped:
        logger.warning(
            "%s %s: skipped %d of %d utterances shorter than %d frames",
            dataset, split, skipped, len(num_frames), window,
        )  # fmt: skip
    index = WindowIndex(
        utterance_row=utterance_row,
        start_frame=start_frame,
        num_frames=num_frames,
        speakers=tuple(speakers),
        first_utterance=first_utterance,
        num_skipped_utterances=skipped,
        window=window,
        hop=hop,
    )
    if index.num_windows == 0:
        raise ValueError(
            f"{dataset} {split} (process {process[0]} of {process[1]}) has no window of "
            f"{window} frames: {len(num_frames)} utterances, {skipped} too short"
        )
    return source, index


def window_index(
    dataset: str = DEFAULT_DATASET,
    split: str = "train",
    data_dir: str | None = None,
    cache_dir: str | epath.PathLike | None = None,
    window: int = WINDOW_FRAMES,
    hop: int = HOP_FRAMES,
) -> WindowIndex:
    """The window index of this process's shard of `split` (counts, skipped utterances)."""
    return _open_shard(dataset, split, data_dir, cache_dir, window, hop)[1]


# ---------------------------------------------------------------- examples


@dataclasses.dataclass(frozen=True)
class _WindowReader:
    """Reads window `row` of the index and cuts the model's tensors from its utterance."""

    source: Sequence
    index: WindowIndex
    audio_lookahead: int = 0  # the audio window starts this many frames after the video's
    log_mel_stats: audio.LogMelStats = audio.FIXED_LOG_MEL_STATS  # the model's normalisation

    def read(self, row: int, identity_frame: int) -> dict[str, np.ndarray]:
        """Window `row`, with frame `identity_frame` of its utterance as identity."""
        utterance = int(self.index.utterance_row[row])
        start = int(self.index.start_frame[row])
        stop = start + self.index.window
        example = self.source[utterance]
        speaker = example["speaker"]
        return {
            "video": normalize_video(example["frames"][start:stop]),
            "identity": normalize_video(example["frames"][identity_frame]),
            "audio": normalize_log_mel(
                audio.log_mel_window(
                    example["log_mel"], start + self.audio_lookahead, self.index.window
                ),
                self.log_mel_stats,
            ),
            "landmarks": np.asarray(example["landmarks"][start:stop], np.float32),
            "utterance_index": np.int32(self.index.first_utterance + utterance),
            "start_frame": np.int32(start),
            "speaker_id": np.int32(speaker_id(speaker)),
        }

    def padding(self) -> dict[str, np.ndarray]:
        """An all-zero example with ids -1, for the rows that fill the last eval batch."""
        example = {key: np.zeros_like(value) for key, value in self.read(0, 0).items()}
        for key in ("utterance_index", "start_frame", "speaker_id"):
            example[key] = np.int32(-1)
        return example


@dataclasses.dataclass(frozen=True)
class _TrainExample:
    """grain map_with_index: (position in the repeated stream, window row) -> example.

    The identity frame is drawn from an RNG seeded by (seed, epoch, window row), so a
    window gets a new identity every epoch, reproducibly.
    """

    reader: _WindowReader
    seed: int

    def __call__(self, position: int, row: int) -> dict[str, np.ndarray]:
        epoch = position // self.reader.index.num_windows
        num_frames = self.reader.index.num_frames[self.reader.index.utterance_row[row]]
        rng = np.random.default_rng([self.seed, epoch, int(row)])
        return self.reader.read(row, int(rng.integers(num_frames)))


@dataclasses.dataclass(frozen=True)
class _EvalExample:
    """grain map: position -> (example of window rows[position], valid), padding past the
    last row; identity = the first frame."""

    reader: _WindowReader
    rows: tuple[int, ...]  # the window rows scored, in order

    def __call__(self, position: int) -> dict[str, Any]:
        if position >= len(self.rows):
            return {**self.reader.padding(), "mask": np.False_}
        return {**self.reader.read(int(self.rows[position]), identity_frame=0), "mask": np.True_}


def _split_mask(batch: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    batch = dict(batch)
    mask = batch.pop("mask")
    return batch, mask


# ---------------------------------------------------------------- iterators


def per_process_batch_size(global_batch_size: int, num_data_devices: int | None = None) -> int:
    """global_batch_size // jax.process_count(), after checking that it splits evenly.

    Raises ValueError when global_batch_size is not a positive multiple of the number of
    devices the batch is sharded over (default: all devices) and of the process count.
    """
    num_data_devices = num_data_devices or jax.device_count()
    process_count = jax.process_count()
    if global_batch_size < 1 or global_batch_size % num_data_devices:
        raise ValueError(
            f"global_batch_size={global_batch_size} must be a positive multiple of the "
            f"number of devices the batch is sharded over ({num_data_devices})"
        )
    if global_batch_size % process_count:
        raise ValueError(
            f"global_batch_size={global_batch_size} must be a multiple of the process "
            f"count ({process_count})"
        )
    return global_batch_size // process_count


def _allow_unparsed_absl_flags() -> None:
    # grain 0.2.18's mp_prefetch reads an absl flag and raises UnparsedFlagAccessError in
    # programs that do not start with absl.app (google/grain#1355, fixed upstream later).
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _read_options(num_threads: int) -> grain.ReadOptions:
    # grain's default buffer (500 elements) would hold hundreds of batches: keep 2 ready.
    return grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2)


def create_train_iterator(
    dataset: str = DEFAULT_DATASET,
    split: str = "train",
    data_dir: str | None = None,
    *,
    global_batch_size: int,
    seed: int,
    cache_dir: str | epath.PathLike | None = None,
    window: int = WINDOW_FRAMES,
    hop: int = HOP_FRAMES,
    num_data_devices: int | None = None,
    num_threads: int = 1,
    worker_count: int = 0,
    audio_lookahead: int = 0,
    log_mel_stats: audio.LogMelStats = audio.FIXED_LOG_MEL_STATS,
) -> grain.DatasetIterator:
    """An infinite iterator of shuffled training batches (dicts of NumPy arrays).

    Each epoch is a fresh global shuffle (seeded by `seed` and the epoch) of the windows
    of this process's shard; batches have global_batch_size // process_count rows, full
    ones only. The iterator's `get_state()` / `set_state()` (or `checkpoint_save_args` /
    `checkpoint_restore_args` with orbax) resume it at exactly the next batch.
    `num_threads` threads read whole batches ahead of the trainer (0: read on demand; more
    than 1 rarely helps: decoding holds the GIL); `worker_count` > 0 reads in that many
    processes instead (grain mp_prefetch; resume with the same worker_count). The batches
    are the same whatever num_threads and worker_count. `audio_lookahead` (frames, >= 0;
    `config.model.audio_lookahead_frames`) starts each audio window that many frames after
    its video window (padded with the utterance's quietest mel frame past its end).
    `log_mel_stats` normalise the audio (the model's, `audio.model_log_mel_stats`).
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    batch_size = per_process_batch_size(global_batch_size, num_data_devices)
    source, index = _open_shard(dataset, split, data_dir, cache_dir, window, hop)
    reader = _WindowReader(source, index, audio.check_lookahead(audio_lookahead), log_mel_stats)
    windows = (
        grain.MapDataset.range(index.num_windows)
        .shuffle(seed=seed)
        .repeat(None)  # reseeds the shuffle every epoch
        .map_with_index(_TrainExample(reader, seed))
    )
    # Batching before to_iter_dataset makes a batch a pure function of its position, so
    # the stream (and a saved state) do not depend on num_threads or worker_count.
    batches = windows.batch(batch_size, drop_remainder=True).to_iter_dataset(
        _read_options(num_threads)
    )
    if worker_count > 0:
        _allow_unparsed_absl_flags()
        batches = batches.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return iter(batches)


def create_eval_iterator(
    dataset: str = DEFAULT_DATASET,
    split: str = "validation",
    data_dir: str | None = None,
    *,
    global_batch_size: int,
    cache_dir: str | epath.PathLike | None = None,
    window: int = WINDOW_FRAMES,
    hop: int = HOP_FRAMES,
    num_data_devices: int | None = None,
    num_threads: int = 1,
    audio_lookahead: int = 0,
    max_batches: int = 0,
    log_mel_stats: audio.LogMelStats = audio.FIXED_LOG_MEL_STATS,
) -> grain.IterDataset:
    """One deterministic pass over every window of this process's shard of `split`, or
    over `max_batches` * (global_batch_size // process_count) of them, spread evenly over
    the shard (`max_batches` > 0: a bounded validation whose processes together score
    `max_batches` global batches, every speaker of the split represented).

    Iterating yields `(batch, mask)`: `batch` as in training but with the FIRST frame of
    the utterance as identity (repeatable metrics), `mask` (rows,) bool marking real
    windows. The last batch is padded with zero rows (ids -1, mask False); with several
    processes every process yields the same number of batches. The result is re-iterable.
    `audio_lookahead` and `log_mel_stats` as in `create_train_iterator`.
    """
    batch_size = per_process_batch_size(global_batch_size, num_data_devices)
    source, index = _open_shard(dataset, split, data_dir, cache_dir, window, hop)
    if max_batches < 0:
        raise ValueError(f"max_batches: expected >= 0 (0 = every window), got {max_batches}")
    rows = np.arange(index.num_windows)
    if max_batches and max_batches * batch_size < index.num_windows:
        rows = np.unique(np.linspace(0, index.num_windows - 1, max_batches * batch_size).round())
        rows = rows.astype(np.int64)
    num_batches = math.ceil(len(rows) / batch_size)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        num_batches = int(np.max(multihost_utils.process_allgather(np.int64(num_batches))))
    windows = grain.MapDataset.range(num_batches * batch_size).map(
        _EvalExample(
            _WindowReader(source, index, audio.check_lookahead(audio_lookahead), log_mel_stats),
            tuple(rows),
        )
    )
    batches = windows.batch(batch_size).map(_split_mask)
    return batches.to_iter_dataset(_read_options(num_threads))


# ---------------------------------------------------------------- devices and checkpoints


def make_data_sharding(mesh: jax.sharding.Mesh | None = None) -> jax.sharding.NamedSharding:
    """Batch-axis sharding over the mesh axis "data" (default mesh: all devices on it)."""
    if mesh is None:
        from lipjax import sharding

        mesh = sharding.make_mesh()
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def to_global_arrays(batch: Any, sharding: jax.sharding.Sharding) -> Any:
    """Per-process NumPy batch (any pytree) -> global `jax.Array`s split along axis 0.

    Every process passes its own rows; the global batch is their concatenation in
    process order. Raises ValueError when the global rows do not split over `sharding`.
    """

    def to_global(local: np.ndarray) -> jax.Array:
        local = np.asarray(local)
        global_shape = (local.shape[0] * jax.process_count(), *local.shape[1:])
        try:
            sharding.shard_shape(global_shape)
        except ValueError as error:
            raise ValueError(
                f"A global batch of {global_shape[0]} rows does not split over {sharding}: {error}"
            ) from error
        return jax.make_array_from_process_local_data(sharding, local, global_shape)

    return jax.tree.map(to_global, batch)


def to_local_rows(array: jax.Array) -> np.ndarray:
    """The inverse of `to_global_arrays`: this process's rows of a batch-sharded global
    array, as NumPy (a replicated array: all its rows)."""
    shards = {}
    for shard in array.addressable_shards:
        rows = shard.index[0] if shard.index else slice(None)
        shards.setdefault((rows.start or 0, rows.stop), shard.data)
    if len(shards) == 1:
        return np.asarray(next(iter(shards.values())))
    return np.concatenate([np.asarray(shards[key]) for key in sorted(shards)])


def checkpoint_save_args(iterator: grain.DatasetIterator) -> Any:
    """Orbax save args for the iterator's state, for `ocp.args.Composite(data=...)`.

    Writes one JSON file per process (`process_<i>-of-<n>.json`) in the item directory.
    """
    return grain.checkpoint.CheckpointSave(iterator)


def checkpoint_restore_args(iterator: grain.DatasetIterator) -> Any:
    """Orbax restore args: restoring sets `iterator` (built with the same arguments) to the
    saved position in place and returns it."""
    return grain.checkpoint.CheckpointRestore(iterator)
